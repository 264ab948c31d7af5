//! Other names customer systems use for the columns a churn model reads, and the unit
//! conversions they imply.
//!
//! CRMs and billing systems do not say `tenure` and `MonthlyCharges`: they say `months_active`,
//! `account_age_days`, `mrr`, `ltv`. Each [`AliasGroup`] lists names (compared as [`column_key`]s) that
//! mean one thing; a model feature whose name is in a group accepts a file column whose name is
//! in the same group. Durations carry a unit, either from the table or from a suffix of the name
//! (`tenure_days`, `account_age_years`), and are converted to the feature's unit.

use crate::values::column_key;

/// The unit a duration column is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Not a duration, or a duration in the same unit as the feature.
    Same,
    /// Days.
    Days,
    /// Weeks.
    Weeks,
    /// Months.
    Months,
    /// Years.
    Years,
    /// An amount per year, in a group of amounts per month (annual recurring revenue for
    /// monthly charges): divided by 12.
    PerYear,
}

impl Unit {
    /// Months in one of this unit: a Gregorian month is 365.2425 / 12 = 30.436875 days.
    fn months(self) -> Option<f64> {
        match self {
            Unit::Same | Unit::PerYear => None,
            Unit::Days => Some(12.0 / 365.2425),
            Unit::Weeks => Some(7.0 * 12.0 / 365.2425),
            Unit::Months => Some(1.0),
            Unit::Years => Some(12.0),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Unit::Same | Unit::PerYear => "",
            Unit::Days => "days",
            Unit::Weeks => "weeks",
            Unit::Months => "months",
            Unit::Years => "years",
        }
    }
}

/// Names (column keys) meaning one thing, each with the unit it is counted in.
pub struct AliasGroup {
    /// What the names mean, for messages (e.g. `"tenure in months"`).
    pub meaning: &'static str,
    /// Column names (compared by [`column_key`], so `user_id` also matches `UserID`) and their
    /// units.
    pub names: &'static [(&'static str, Unit)],
}

use Unit::{Days, Months, PerYear, Same, Years};

/// The alias table. The first group is the customer id.
pub const GROUPS: &[AliasGroup] = &[
    AliasGroup {
        meaning: "customer id",
        names: &[
            ("customer_id", Same),
            ("user_id", Same),
            ("account_id", Same),
            ("client_id", Same),
            ("subscriber_id", Same),
            ("cust_id", Same),
            ("customer_number", Same),
            ("customer_no", Same),
            ("account_number", Same),
            ("account_no", Same),
            ("member_id", Same),
            ("id", Same),
        ],
    },
    AliasGroup {
        meaning: "tenure (time as a customer)",
        names: &[
            ("tenure", Months),
            ("months_subscribed", Months),
            ("months_active", Months),
            ("months_as_customer", Months),
            ("account_age", Months),
            // BankChurners' export (months with the bank). Not `customer_age` (that export's
            // `Customer_Age` is the person's age in years) nor a bare `lifetime` (as often the
            // lifetime value): a name that can mean another quantity is no alias.
            ("months_on_book", Months),
            ("subscription_age", Months),
            ("days_subscribed", Days),
            ("days_active", Days),
            ("days_since_signup", Days),
            ("days_as_customer", Days),
            ("years_subscribed", Years),
            ("years_active", Years),
            ("years_as_customer", Years),
        ],
    },
    AliasGroup {
        meaning: "monthly charges",
        names: &[
            ("monthly_charges", Same),
            ("monthly_charge", Same),
            ("mrr", Same),
            ("monthly_fee", Same),
            ("monthly_revenue", Same),
            ("monthly_recurring_revenue", Same),
            ("monthly_spend", Same),
            ("monthly_amount", Same),
            ("monthly_bill", Same),
            ("monthly_cost", Same),
            ("monthly_price", Same),
            // Annual recurring revenue ÷ 12 is monthly recurring revenue (the usual SaaS
            // definition, for a contract billed evenly over the year).
            ("arr", PerYear),
            ("annual_recurring_revenue", PerYear),
            ("annual_revenue", PerYear),
            ("yearly_revenue", PerYear),
        ],
    },
    AliasGroup {
        meaning: "total charges",
        names: &[
            ("total_charges", Same),
            ("total_revenue", Same),
            ("ltv", Same),
            ("clv", Same),
            ("lifetime_value", Same),
            ("customer_lifetime_value", Same),
            ("total_spend", Same),
            ("total_billed", Same),
            ("total_paid", Same),
        ],
    },
    AliasGroup {
        meaning: "contract",
        names: &[
            ("contract", Same),
            ("contract_type", Same),
            ("plan", Same),
            ("plan_type", Same),
            ("billing_cycle", Same),
            ("billing_period", Same),
            ("subscription_type", Same),
            ("subscription_plan", Same),
        ],
    },
    AliasGroup {
        meaning: "gender",
        names: &[("gender", Same), ("sex", Same)],
    },
    AliasGroup {
        meaning: "senior citizen",
        names: &[
            ("senior_citizen", Same),
            ("senior", Same),
            ("is_senior_citizen", Same),
            ("is_senior", Same),
        ],
    },
    AliasGroup {
        meaning: "partner",
        names: &[("partner", Same), ("has_partner", Same)],
    },
    AliasGroup {
        meaning: "dependents",
        names: &[
            ("dependents", Same),
            ("has_dependents", Same),
            ("dependants", Same),
        ],
    },
    AliasGroup {
        meaning: "payment method",
        names: &[
            ("payment_method", Same),
            ("payment_type", Same),
            ("payment_mode", Same),
        ],
    },
    // The SaaS baseline's inputs ([`crate::baseline`]) under the names subscription systems
    // export them with.
    AliasGroup {
        meaning: "product usage score",
        names: &[
            ("feature_usage_score", Same),
            ("usage_score", Same),
            ("product_usage_score", Same),
            ("product_usage", Same),
            ("feature_usage", Same),
            ("usage", Same),
            ("engagement_score", Same),
            ("adoption_score", Same),
            ("activity_score", Same),
        ],
    },
    AliasGroup {
        meaning: "support tickets",
        names: &[
            ("support_tickets", Same),
            ("tickets", Same),
            ("ticket_count", Same),
            ("num_tickets", Same),
            ("number_of_tickets", Same),
            ("tickets_opened", Same),
            ("support_requests", Same),
            ("support_cases", Same),
            ("support_ticket_count", Same),
        ],
    },
    AliasGroup {
        meaning: "days since the last activity",
        names: &[
            ("last_activity_days_ago", Same),
            ("days_since_last_login", Same),
            ("days_since_last_activity", Same),
            ("days_since_last_seen", Same),
            ("days_since_last_use", Same),
            ("days_since_login", Same),
            ("last_login_days_ago", Same),
            ("last_seen_days_ago", Same),
            ("days_inactive", Same),
            ("inactive_days", Same),
        ],
    },
    AliasGroup {
        meaning: "has an integration",
        names: &[
            ("has_integration", Same),
            ("has_integrations", Same),
            ("integrated", Same),
            ("uses_integration", Same),
            ("uses_integrations", Same),
        ],
    },
    AliasGroup {
        meaning: "paperless billing",
        names: &[
            ("paperless_billing", Same),
            ("paperless", Same),
            ("e_billing", Same),
        ],
    },
    // The inputs of an outcomes file (`crate::outcomes`), never of a model.
    AliasGroup {
        meaning: "whether the customer churned (an outcome)",
        names: &[
            ("churned", Same),
            ("churn", Same),
            ("exited", Same),
            ("attrition", Same),
            ("attrition_flag", Same),
            ("churn_flag", Same),
            ("is_churned", Same),
            ("has_churned", Same),
            ("churn_label", Same),
        ],
    },
    AliasGroup {
        meaning: DATES_MEANING,
        names: &[
            ("date", Same),
            ("outcome_date", Same),
            ("churn_date", Same),
            ("churned_on", Same),
            ("churned_at", Same),
            ("cancellation_date", Same),
            ("event_date", Same),
            ("observed_on", Same),
            ("as_of_date", Same),
            ("status_date", Same),
        ],
    },
];

/// The meaning of the alias group whose names are dates (an outcome's date).
const DATES_MEANING: &str = "the date an outcome was observed";

/// True when `name` is in the alias group of dates, so a date input of that name accepts the
/// group's other names (`churn_date` for an outcome's `date`).
pub fn names_dates(name: &str) -> bool {
    lookup(&column_key(name)).is_some_and(|(g, _)| GROUPS[g].meaning == DATES_MEANING)
}

/// The alias group of a model feature name, for listing the column names a file may use
/// (e.g. for a "supported columns" page); `None` when the name is in no group.
pub fn group_of(feature: &str) -> Option<&'static AliasGroup> {
    lookup(&column_key(feature)).map(|(g, _)| &GROUPS[g])
}

/// True when `column` is a name the alias table gives to something other than `feature` (e.g.
/// `monthly_spend` for `TotalCharges`): such a column is never a plausible stand-in for it.
pub fn names_another_input(feature: &str, column: &str) -> bool {
    match (lookup(&column_key(column)), lookup(&column_key(feature))) {
        (Some((cg, _)), Some((fg, _))) => cg != fg,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// Months in one unit of a duration column named `name` (`1` for `tenure`, about 1/30.44 for
/// `days_subscribed`), when the alias table knows its unit.
pub fn months_per_unit(name: &str) -> Option<f64> {
    lookup(&column_key(name)).and_then(|(_, u)| u.months())
}

/// The unit model input `feature` is counted in, for a message about a converted value:
/// `"months"` for `tenure`, `"days"` for a days-since input, `"a month"` for monthly charges;
/// `None` when the alias table gives it no unit.
pub fn unit_of(feature: &str) -> Option<&'static str> {
    let (g, u) = lookup(&column_key(feature))?;
    if u.months().is_some() {
        return Some(u.name());
    }
    match GROUPS[g].meaning {
        "days since the last activity" => Some("days"),
        "monthly charges" => Some("a month"),
        _ => None,
    }
}

/// True when the alias table counts `name` as an amount per year in a group of amounts per
/// month (`arr` among the monthly charges' names).
pub fn is_per_year(name: &str) -> bool {
    lookup(&column_key(name)).is_some_and(|(_, u)| u == PerYear)
}

/// The meaning of `name` in the alias table (`"monthly charges"` for `mrr`), if it has one.
pub fn meaning_of(name: &str) -> Option<&'static str> {
    lookup(&column_key(name)).map(|(g, _)| GROUPS[g].meaning)
}

/// Other spellings of category levels, as [`crate::values::level_key`]s: `(synonym, level)`.
/// Billing systems say `monthly`/`annual` where the Telco data says `Month-to-month`/`One year`.
/// Consulted only for a value that matches no level of the model directly.
pub const LEVEL_SYNONYMS: &[(&str, &str)] = &[
    ("monthly", "monthtomonth"),
    ("month", "monthtomonth"),
    ("mtm", "monthtomonth"),
    ("1month", "monthtomonth"),
    ("annual", "oneyear"),
    ("annually", "oneyear"),
    ("yearly", "oneyear"),
    ("year", "oneyear"),
    ("1year", "oneyear"),
    ("12months", "oneyear"),
    ("biennial", "twoyear"),
    ("twoyears", "twoyear"),
    ("2year", "twoyear"),
    ("2years", "twoyear"),
    ("24months", "twoyear"),
    ("fiber", "fiberoptic"),
    ("fibre", "fiberoptic"),
    ("fibreoptic", "fiberoptic"),
    ("m", "male"),
    ("f", "female"),
];

/// The level of `levels` (model spellings) that `raw` names through [`LEVEL_SYNONYMS`], if any.
pub fn level_synonym<'a>(raw: &str, levels: &'a [String]) -> Option<&'a str> {
    let key = crate::values::level_key(raw);
    let (_, target) = LEVEL_SYNONYMS.iter().find(|(s, _)| *s == key)?;
    levels
        .iter()
        .find(|l| crate::values::level_key(l) == *target)
        .map(String::as_str)
}

/// Names of date columns that stand for a duration input, as column keys of their stem (the
/// key with a trailing `date`, `at`, `on`, `time` or `timestamp` removed, or the whole key):
/// `(stem, meaning of the duration group)`. A date is read as whole days before the file's
/// reference date ([`crate::dates`]): the days since the last login for `last_login_date`, the
/// time as a customer for `signup_date`.
pub const DATE_STEMS: &[(&str, &str)] = &[
    ("lastlogin", "days since the last activity"),
    ("lastseen", "days since the last activity"),
    ("lastactivity", "days since the last activity"),
    ("lastactive", "days since the last activity"),
    ("lastused", "days since the last activity"),
    ("lastuse", "days since the last activity"),
    ("signup", "tenure (time as a customer)"),
    ("signedup", "tenure (time as a customer)"),
    ("startdate", "tenure (time as a customer)"),
    ("start", "tenure (time as a customer)"),
    ("subscriptionstart", "tenure (time as a customer)"),
    ("customersince", "tenure (time as a customer)"),
    ("created", "tenure (time as a customer)"),
    ("join", "tenure (time as a customer)"),
    ("joined", "tenure (time as a customer)"),
];

/// Endings of a date column's name removed before [`DATE_STEMS`] is consulted, longest first.
const DATE_SUFFIXES: &[&str] = &["timestamp", "date", "time", "at", "on"];

/// Whether file column `column`, read as dates, stands for duration feature `feature`, and the
/// factor from days to the feature's unit (1 for a count of days, 12/365.2425 for months).
pub fn date_match(feature: &str, column: &str) -> Option<AliasMatch> {
    let ck = column_key(column);
    let named = |stem: &str| DATE_STEMS.iter().find(|(s, _)| *s == stem).map(|(_, m)| *m);
    let meaning = named(&ck).or_else(|| {
        DATE_SUFFIXES
            .iter()
            .find_map(|suffix| ck.strip_suffix(suffix).and_then(&named))
    })?;
    let (fg, fu) = lookup(&column_key(feature))?;
    if GROUPS[fg].meaning != meaning {
        return None;
    }
    // A days-since group counts days (its names say so) even where its unit reads `Same`.
    let scale = match fu.months() {
        Some(m) => Unit::Days.months()? / m,
        None => 1.0,
    };
    let unit = if scale == 1.0 { "days" } else { fu.name() };
    Some(AliasMatch {
        meaning,
        scale,
        conversion: Some(format!(
            "a date, read as the {unit} before the file's reference date"
        )),
        per_year: false,
        from_date: true,
    })
}

/// Unit suffixes recognised at the end of a duration name, longest first.
const UNIT_SUFFIXES: &[(&str, Unit)] = &[
    ("indays", Days),
    ("days", Days),
    ("day", Days),
    ("inweeks", Unit::Weeks),
    ("weeks", Unit::Weeks),
    ("inmonths", Months),
    ("months", Months),
    ("mos", Months),
    ("inyears", Years),
    ("years", Years),
    ("yrs", Years),
];

/// A column accepted for a feature through the alias table.
#[derive(Clone, Debug, PartialEq)]
pub struct AliasMatch {
    /// What the group means (e.g. `"monthly charges"`).
    pub meaning: &'static str,
    /// Numbers in the column are multiplied by this to be in the feature's unit (1 when no
    /// conversion applies).
    pub scale: f64,
    /// The conversion, said in words (e.g. `"days converted to months (÷ 30.44)"`), if any.
    pub conversion: Option<String>,
    /// The column is an amount per year read for an amount per month ([`Unit::PerYear`]): a
    /// monthly column of the same meaning is preferred to it.
    pub per_year: bool,
    /// The column holds dates, read as the time before the file's reference date
    /// ([`date_match`]): a column holding the duration itself is preferred to it.
    pub from_date: bool,
}

/// Every alias of [`GROUPS`] as its column key, with its group and unit, in table order: keyed
/// once per process, so a lookup compares keys instead of re-keying every alias (the lookup
/// runs in the mapping, for revenue, and per scored row in the recommendations).
fn keyed_names() -> &'static [(String, usize, Unit)] {
    static KEYED: std::sync::OnceLock<Vec<(String, usize, Unit)>> = std::sync::OnceLock::new();
    KEYED.get_or_init(|| {
        GROUPS
            .iter()
            .enumerate()
            .flat_map(|(g, group)| group.names.iter().map(move |&(n, u)| (column_key(n), g, u)))
            .collect()
    })
}

/// The group and unit of a column key: the key itself, or its stem before a unit suffix.
fn lookup(key: &str) -> Option<(usize, Unit)> {
    let keyed = keyed_names();
    if let Some(&(_, g, u)) = keyed.iter().find(|(k, _, _)| k == key) {
        return Some((g, u));
    }
    for &(suffix, unit) in UNIT_SUFFIXES {
        if let Some(stem) = key.strip_suffix(suffix) {
            // The first group (in table order) with a unit-bearing alias of that stem.
            let group = (0..GROUPS.len()).find(|&g| {
                keyed
                    .iter()
                    .any(|(k, kg, u)| *kg == g && k == stem && u.months().is_some())
            });
            if let Some(g) = group {
                return Some((g, unit));
            }
        }
    }
    None
}

/// Whether file column `column` means model feature `feature` by the alias table, and how its
/// numbers convert. `None` when either name is in no group or they are in different groups,
/// and also when both have the same key (that is a normalised match, not an alias).
pub fn alias_match(feature: &str, column: &str) -> Option<AliasMatch> {
    let (fk, ck) = (column_key(feature), column_key(column));
    if fk == ck || ck.is_empty() {
        return None;
    }
    let (fg, fu) = lookup(&fk)?;
    let (cg, cu) = lookup(&ck)?;
    if fg != cg {
        return None;
    }
    if cu == PerYear || fu == PerYear {
        // Only an annual amount read for a monthly one converts (÷ 12); the other way round
        // is not offered.
        if fu == PerYear {
            return None;
        }
        return Some(AliasMatch {
            meaning: GROUPS[fg].meaning,
            scale: 1.0 / 12.0,
            conversion: Some("an annual amount divided by 12 (ARR / 12 = monthly revenue)".into()),
            per_year: true,
            from_date: false,
        });
    }
    let (scale, conversion) = match (cu.months(), fu.months()) {
        (Some(c), Some(f)) if cu != fu => {
            let scale = c / f;
            let words = if scale < 1.0 {
                format!(
                    "{} converted to {} (÷ {:.2})",
                    cu.name(),
                    fu.name(),
                    1.0 / scale
                )
            } else {
                format!("{} converted to {} (× {:.2})", cu.name(), fu.name(), scale)
            };
            (scale, Some(words))
        }
        _ => (1.0, None),
    };
    Some(AliasMatch {
        meaning: GROUPS[fg].meaning,
        scale,
        conversion,
        per_year: false,
        from_date: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_units() {
        assert_eq!(alias_match("customerID", "user_id").unwrap().scale, 1.0);
        assert_eq!(alias_match("customerID", "Account ID").unwrap().scale, 1.0);
        assert_eq!(
            alias_match("tenure", "months_subscribed").unwrap().scale,
            1.0
        );
        assert_eq!(alias_match("tenure", "account_age").unwrap().scale, 1.0);
        let days = alias_match("tenure", "account_age_days").unwrap();
        assert!((days.scale - 1.0 / 30.436875).abs() < 1e-12);
        assert!(days
            .conversion
            .unwrap()
            .contains("days converted to months"));
        assert_eq!(alias_match("tenure", "tenure (years)").unwrap().scale, 12.0);
        assert_eq!(
            alias_match("tenure", "days_active").unwrap().scale,
            12.0 / 365.2425
        );
        assert_eq!(alias_match("MonthlyCharges", "MRR").unwrap().scale, 1.0);
        assert!(alias_match("TotalCharges", "ltv").is_some());
        let arr = alias_match("MonthlyCharges", "ARR").unwrap();
        assert!(arr.per_year && arr.scale == 1.0 / 12.0, "{arr:?}");
        assert!(
            alias_match("mrr", "annual_recurring_revenue")
                .unwrap()
                .per_year
        );
        assert!(alias_match("arr", "mrr").is_none());
        let login = date_match("days_since_last_login", "last_login_date").unwrap();
        assert!(login.from_date && login.scale == 1.0, "{login:?}");
        let signup = date_match("tenure", "Signup Date").unwrap();
        assert!((signup.scale - 12.0 / 365.2425).abs() < 1e-12, "{signup:?}");
        assert!(date_match("tenure", "last_login").is_none());
        assert!(date_match("MonthlyCharges", "signup_date").is_none());
        assert!(alias_match("Contract", "billing_cycle").is_some());
        assert!(alias_match("Contract", "plan_type").is_some());
        assert!(alias_match("MonthlyCharges", "total_revenue").is_none());
        assert!(alias_match("tenure", "Tenure").is_none());
        assert!(alias_match("gender", "charges_days").is_none());
        // A SaaS model's own name for tenure accepts the Telco one.
        assert_eq!(
            alias_match("months_subscribed", "tenure").unwrap().scale,
            1.0
        );
        assert_eq!(group_of("MRR").unwrap().meaning, "monthly charges");
        let levels: Vec<String> = ["Month-to-month", "One year", "Two year"]
            .map(String::from)
            .to_vec();
        assert_eq!(level_synonym("Annual", &levels), Some("One year"));
        assert_eq!(level_synonym("monthly", &levels), Some("Month-to-month"));
        assert_eq!(level_synonym("weekly", &levels), None);
    }
}
