-- Regular expressions against DuckDB: regexp_replace (first match, every match with 'g',
-- case-insensitive with 'i', group references \1), regexp_extract (whole match, a group, no
-- match gives ''), over NULLs and non-ASCII text.
select id, s,
  regexp_replace(s, '[aeiou]', '_') as first_vowel,
  regexp_replace(s, '[aeiou]', '_', 'g') as every_vowel,
  regexp_replace(s, 'A', '#', 'gi') as every_a,
  regexp_replace(s, '^(\w)(\w*)', '\2\1') as rotated,
  regexp_extract(s, '[0-9]+') as digits,
  regexp_extract(s, '(\w+)\s+(\w+)', 2) as second_word,
  regexp_matches(s, 'ß|日') as non_ascii
from edge_types
where id < 200
order by id;
