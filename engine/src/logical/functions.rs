//! What an expression can apply: binary operators, scalar functions (with the date parts
//! `extract` takes) and aggregate functions, with their SQL names. Their evaluation lives in
//! `eval`; their result types in [`types`](crate::logical::types).

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum BinaryOp {
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Multiply,
    /// `/`
    Divide,
    /// `%`
    Modulo,
    /// `//`: integer division of integers (truncating; by zero NULL), else as `/` but NULL
    /// for a zero divisor (DuckDB's operator).
    IntegerDivide,
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND` (three-valued)
    And,
    /// `OR` (three-valued)
    Or,
    /// `||`
    StringConcat,
}

impl BinaryOp {
    /// True for `= <> < <= > >=`.
    pub(crate) fn is_comparison(self) -> bool {
        matches!(
            self,
            Self::Eq | Self::NotEq | Self::Lt | Self::LtEq | Self::Gt | Self::GtEq
        )
    }

    /// The comparison with operands swapped (`a < b` ⇔ `b > a`).
    pub(crate) fn swap(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::LtEq => Self::GtEq,
            Self::Gt => Self::Lt,
            Self::GtEq => Self::LtEq,
            other => other,
        }
    }

    /// The SQL spelling.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Plus => "+",
            Self::Minus => "-",
            Self::Multiply => "*",
            Self::Divide => "/",
            Self::Modulo => "%",
            Self::IntegerDivide => "//",
            Self::Eq => "=",
            Self::NotEq => "<>",
            Self::Lt => "<",
            Self::LtEq => "<=",
            Self::Gt => ">",
            Self::GtEq => ">=",
            Self::And => "AND",
            Self::Or => "OR",
            Self::StringConcat => "||",
        }
    }
}

/// Parts of a date or timestamp for `extract`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DatePart {
    /// Calendar year.
    Year,
    /// Quarter 1–4.
    Quarter,
    /// Month 1–12.
    Month,
    /// ISO week.
    Week,
    /// Day of month.
    Day,
    /// Day of week, Sunday = 0.
    DayOfWeek,
    /// Day of year.
    DayOfYear,
    /// Hour.
    Hour,
    /// Minute.
    Minute,
    /// Second.
    Second,
    /// Millisecond (`date_part`: the seconds in milliseconds, fraction included).
    Millisecond,
    /// Microsecond (`date_part`: the seconds in microseconds, fraction included).
    Microsecond,
}

impl DatePart {
    /// Microseconds in one unit of a time-of-day part (`hour` ... `microsecond`); `None` for
    /// the calendar parts.
    pub fn micros(self) -> Option<i64> {
        match self {
            DatePart::Hour => Some(3_600_000_000),
            DatePart::Minute => Some(60_000_000),
            DatePart::Second => Some(1_000_000),
            DatePart::Millisecond => Some(1_000),
            DatePart::Microsecond => Some(1),
            _ => None,
        }
    }
}

/// Scalar (row-by-row) functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ScalarFunction {
    /// `upper(s)`
    Upper,
    /// `lower(s)`
    Lower,
    /// `length(s)` in characters
    Length,
    /// `trim(s)`
    Trim,
    /// `ltrim(s)`
    LTrim,
    /// `rtrim(s)`
    RTrim,
    /// `substring(s, start [, length])`, 1-based, in characters
    Substring,
    /// `starts_with(s, prefix)`
    StartsWith,
    /// `ends_with(s, suffix)`
    EndsWith,
    /// `contains(s, needle)`
    Contains,
    /// `regexp_matches(s, pattern)`: the pattern (a constant) matches somewhere in `s`
    RegexpMatches,
    /// `coalesce(a, b, ...)`
    Coalesce,
    /// `concat(a, b, ...)`: the arguments as strings, a NULL as the empty string
    Concat,
    /// `extract(part from d)`
    Extract(DatePart),
    /// `abs(x)`
    Abs,
    /// `round(x [, digits])`
    Round,
    /// `floor(x)`: exact (scale 0) on decimals, `DOUBLE` otherwise
    Floor,
    /// `ceil(x)`
    Ceil,
    /// `sqrt(x)`
    Sqrt,
    /// `ln(x)`
    Ln,
    /// `log10(x)`
    Log10,
    /// `exp(x)`
    Exp,
    /// `power(x, y)`
    Power,
    /// `sign(x)`: -1, 0 or 1
    Sign,
    /// `greatest(a, b, ...)`: the largest non-NULL argument
    Greatest,
    /// `least(a, b, ...)`: the smallest non-NULL argument
    Least,
    /// `replace(s, from, to)`
    Replace,
    /// `reverse(s)`
    Reverse,
    /// `left(s, n)`
    Left,
    /// `right(s, n)`
    Right,
    /// `strpos(s, sub)` (also `position(sub IN s)`, `instr`): 1-based, 0 if absent
    Strpos,
    /// `lpad(s, n, fill)`
    Lpad,
    /// `rpad(s, n, fill)`
    Rpad,
    /// `split_part(s, delimiter, n)`
    SplitPart,
    /// `concat_ws(separator, a, b, ...)`: NULL parts skipped
    ConcatWs,
    /// `regexp_replace(s, pattern, replacement [, flags])` (constant pattern and flags)
    RegexpReplace,
    /// `regexp_extract(s, pattern [, group])` (constant pattern and group)
    RegexpExtract,
    /// `date_trunc('part', d)` of a date
    DateTrunc(DatePart),
    /// `date_diff('part', a, b)`: part boundaries from `a` to `b`
    DateDiff(DatePart),
    /// `make_date(year, month, day)`
    MakeDate,
    /// `last_day(d)`
    LastDay,
    /// `strftime(d, format)`: a date or timestamp as text, `%Y-%m-%d`-style format
    Strftime,
    /// `strptime(text, format)` (`try_strptime`: NULL instead of an error when `strict` is
    /// false): text parsed into a TIMESTAMP
    Strptime {
        /// Fail on text that does not match the format.
        strict: bool,
    },
    /// `grouping(k1, k2, ...)`: bits of the keys a grouping set leaves out (k1 the highest);
    /// planning replaces it with its value, so it is never evaluated.
    Grouping,
}

impl ScalarFunction {
    /// The SQL name.
    pub fn name(&self) -> String {
        match self {
            Self::Upper => "upper".into(),
            Self::Lower => "lower".into(),
            Self::Length => "length".into(),
            Self::Trim => "trim".into(),
            Self::LTrim => "ltrim".into(),
            Self::RTrim => "rtrim".into(),
            Self::Substring => "substring".into(),
            Self::StartsWith => "starts_with".into(),
            Self::EndsWith => "ends_with".into(),
            Self::Contains => "contains".into(),
            Self::RegexpMatches => "regexp_matches".into(),
            Self::Coalesce => "coalesce".into(),
            Self::Concat => "concat".into(),
            Self::Extract(part) => format!("extract_{}", format!("{part:?}").to_lowercase()),
            Self::Abs => "abs".into(),
            Self::Round => "round".into(),
            Self::Grouping => "grouping".into(),
            Self::Floor => "floor".into(),
            Self::Ceil => "ceil".into(),
            Self::Sqrt => "sqrt".into(),
            Self::Ln => "ln".into(),
            Self::Log10 => "log10".into(),
            Self::Exp => "exp".into(),
            Self::Power => "power".into(),
            Self::Sign => "sign".into(),
            Self::Greatest => "greatest".into(),
            Self::Least => "least".into(),
            Self::Replace => "replace".into(),
            Self::Reverse => "reverse".into(),
            Self::Left => "left".into(),
            Self::Right => "right".into(),
            Self::Strpos => "strpos".into(),
            Self::Lpad => "lpad".into(),
            Self::Rpad => "rpad".into(),
            Self::SplitPart => "split_part".into(),
            Self::ConcatWs => "concat_ws".into(),
            Self::RegexpReplace => "regexp_replace".into(),
            Self::RegexpExtract => "regexp_extract".into(),
            Self::DateTrunc(part) => format!("date_trunc_{}", format!("{part:?}").to_lowercase()),
            Self::DateDiff(part) => format!("date_diff_{}", format!("{part:?}").to_lowercase()),
            Self::MakeDate => "make_date".into(),
            Self::LastDay => "last_day".into(),
            Self::Strftime => "strftime".into(),
            Self::Strptime { strict: true } => "strptime".into(),
            Self::Strptime { strict: false } => "try_strptime".into(),
        }
    }
}

/// Aggregate functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AggregateFunction {
    /// `count(*)` (no arguments) or `count(x)`
    Count,
    /// `sum(x)`
    Sum,
    /// `avg(x)`
    Avg,
    /// `min(x)`
    Min,
    /// `max(x)`
    Max,
    /// `first(x)`: the value of the first row of the group in arrival order (NULL included).
    /// Deterministic with one thread; with several, rows of different scan partitions arrive
    /// in no fixed order.
    First,
    /// `last(x)`: like [`First`](Self::First), the last row's value.
    Last,
    /// `stddev_samp(x)` (also `stddev`): the sample standard deviation, NULL under two rows
    StddevSamp,
    /// `stddev_pop(x)`: the population standard deviation
    StddevPop,
    /// `var_samp(x)` (also `variance`): the sample variance, NULL under two rows
    VarSamp,
    /// `var_pop(x)`: the population variance
    VarPop,
    /// An exact quantile of the non-NULL values, `median(x)` or `quantile_*(x, p)` (the
    /// fraction `p` is a constant second argument). Holistic: the optimizer rewrites it into
    /// a sort by the value (a window numbering the rows) and ordinary aggregates, so it spills
    /// like any sort (see `optimizer/ordered_set_aggregate.rs`).
    Quantile(QuantileKind),
    /// `arg_min(arg, val)` (also `min_by`): `arg` of the row with the smallest `val`; rows
    /// where either is NULL are skipped; ties go to the smallest `arg`.
    ArgMin,
    /// `arg_max(arg, val)` (also `max_by`): likewise with the largest `val` (ties: largest
    /// `arg`).
    ArgMax,
    /// `covar_pop(y, x)`: the population covariance of the rows where both are non-NULL.
    CovarPop,
    /// `covar_samp(y, x)`: the sample covariance, NULL under two rows.
    CovarSamp,
    /// `corr(y, x)`: Pearson's correlation coefficient (NaN when a variance is zero).
    Corr,
    /// `string_agg(x, sep ORDER BY k1, ...)` (also `group_concat`, `listagg`): the non-NULL
    /// values joined by the constant `sep`, in the order of the keys (arguments after `sep`;
    /// arrival order without keys). Bit `i` of `descending` / `nulls_first` is key `i`'s
    /// direction.
    StringAgg {
        /// Number of order keys.
        keys: u8,
        /// Keys sorted descending, one bit each.
        descending: u16,
        /// Keys with NULLs first, one bit each.
        nulls_first: u16,
    },
    /// `approx_count_distinct(x)`: the number of distinct non-NULL values, estimated by a
    /// HyperLogLog sketch (a standard error of about 0.8%) in bounded memory per group.
    ApproxCountDistinct,
    /// `approx_quantile(x, q)`: the `q`-quantile, estimated from a t-digest in bounded memory
    /// per group; `q` is a constant second argument.
    ApproxQuantile,
}

/// How a quantile picks or interpolates among the sorted values `v[0..n]` at the fractional
/// index `h = (n - 1) * p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum QuantileKind {
    /// `median(x)`: `Linear` at `p = 0.5` (the only kind without a `p` argument).
    Median,
    /// `quantile_cont(x, p)`: `v[floor h] + (h - floor h) * (v[ceil h] - v[floor h])`.
    Linear,
    /// `quantile_disc(x, p)` (also `quantile`, `percentile_disc`): `v[max(ceil(n p) - 1, 0)]`,
    /// the first value whose cumulative share reaches `p`.
    Discrete,
    /// `v[floor h]`.
    Lower,
    /// `v[ceil h]`.
    Higher,
    /// `(v[floor h] + v[ceil h]) / 2`.
    Midpoint,
    /// `v[round h]`, halves rounded up.
    Nearest,
}

impl QuantileKind {
    /// Whether the result is computed from two values (so it needs numbers).
    pub fn interpolates(&self) -> bool {
        matches!(self, Self::Median | Self::Linear | Self::Midpoint)
    }
}

impl AggregateFunction {
    /// True for the aggregates defined over numbers only (sums, averages, variances).
    pub fn takes_numbers(&self) -> bool {
        matches!(
            self,
            Self::Sum
                | Self::Avg
                | Self::StddevSamp
                | Self::StddevPop
                | Self::VarSamp
                | Self::VarPop
        ) || matches!(self, Self::Quantile(kind) if kind.interpolates())
            || self.is_bivariate()
    }

    /// True for the two-argument statistics (covariances, correlation), which take numbers
    /// in both arguments.
    pub fn is_bivariate(&self) -> bool {
        matches!(self, Self::CovarPop | Self::CovarSamp | Self::Corr)
    }

    /// Number of arguments the aggregate takes.
    pub fn arity(&self) -> usize {
        match self {
            Self::ArgMin
            | Self::ArgMax
            | Self::CovarPop
            | Self::CovarSamp
            | Self::Corr
            | Self::ApproxQuantile => 2,
            Self::StringAgg { keys, .. } => 2 + usize::from(*keys),
            _ => 1,
        }
    }

    /// True for aggregates that need all of a group's values in order (quantiles): no
    /// accumulator computes them; the optimizer rewrites them before execution.
    pub fn is_ordered_set(&self) -> bool {
        matches!(self, Self::Quantile(_))
    }

    /// The SQL name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Count => "count",
            Self::Sum => "sum",
            Self::Avg => "avg",
            Self::Min => "min",
            Self::Max => "max",
            Self::First => "first",
            Self::Last => "last",
            Self::StddevSamp => "stddev_samp",
            Self::StddevPop => "stddev_pop",
            Self::VarSamp => "var_samp",
            Self::VarPop => "var_pop",
            Self::Quantile(QuantileKind::Median) => "median",
            Self::Quantile(QuantileKind::Linear) => "quantile_cont",
            Self::Quantile(QuantileKind::Discrete) => "quantile_disc",
            Self::Quantile(QuantileKind::Lower) => "quantile_lower",
            Self::Quantile(QuantileKind::Higher) => "quantile_higher",
            Self::Quantile(QuantileKind::Midpoint) => "quantile_midpoint",
            Self::Quantile(QuantileKind::Nearest) => "quantile_nearest",
            Self::ArgMin => "arg_min",
            Self::ArgMax => "arg_max",
            Self::CovarPop => "covar_pop",
            Self::CovarSamp => "covar_samp",
            Self::Corr => "corr",
            Self::StringAgg { .. } => "string_agg",
            Self::ApproxCountDistinct => "approx_count_distinct",
            Self::ApproxQuantile => "approx_quantile",
        }
    }
}
