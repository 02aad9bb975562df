-- LIKE / NOT LIKE / ILIKE with leading, trailing and inner wildcards and '_'.
select p_brand, count(*) as parts, min(p_name) as first_name
from part
where (p_name like '%green%' or p_name like 'b_ue%' or p_type ilike 'economy%')
  and p_container not like '%BOX'
  and p_mfgr ilike 'manufacturer#_'
group by p_brand
order by p_brand;
