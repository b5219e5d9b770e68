//! What token usage costs: a price table kept as data (`core/pricing.json`, embedded at build
//! time) and the arithmetic over it.
//!
//! Costs are computed when shown, never stored: prices change, and the synced data stays the
//! token counts the agents logged. A model the table does not name has no cost (`None`), never
//! a guessed one. `docs/cli.md` (section "Prices") says how names match and how to update the
//! table.
//!
//! Amounts are exact integers: a price is held in micro-dollars per million tokens, so a token
//! count times a price is a cost in picodollars (10⁻¹² USD), and sums never drift.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

use crate::model::{TokenUsage, UsageEvent};

/// The table compiled into every build.
pub const EMBEDDED_TABLE: &str = include_str!("../pricing.json");

/// Why a price table was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PricingError {
    /// Not JSON of the table's shape (a price missing, a field unknown, a wrong type).
    #[error("price table is malformed: {0}")]
    Malformed(String),
    /// A price that is negative, not a number, absurdly high, or finer than a micro-dollar.
    #[error("price table: {model}.{field} = {value} is not a price in USD per million tokens")]
    InvalidPrice {
        model: String,
        field: &'static str,
        value: String,
    },
    /// An entry without a model name, or with a name or alias that normalizes to nothing.
    #[error("price table: an entry has an empty model name or alias")]
    EmptyName,
    /// Two entries (or an entry and an alias) that claim the same model.
    #[error("price table: {name:?} is claimed by both {first:?} and {second:?}")]
    DuplicateName {
        name: String,
        first: String,
        second: String,
    },
    /// An entry that does not say where its prices come from or when they were checked.
    #[error("price table: {model} has no {field}")]
    MissingProvenance { model: String, field: &'static str },
    /// A long-context tier that starts at zero tokens (it would replace the base rates).
    #[error("price table: {model}.long_context.above_prompt_tokens must be over 0")]
    ZeroThreshold { model: String },
}

/// Prices of one kind of token each, in micro-dollars (10⁻⁶ USD) per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub input: u64,
    pub output: u64,
    pub cache_read: u64,
    pub cache_write: u64,
}

/// Rates that replace the base ones for a model call whose prompt is long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LongContext {
    /// A call whose prompt (input + cache read + cache write) is over this many tokens is
    /// priced at `rates`, all of its tokens.
    pub above_prompt_tokens: u64,
    pub rates: Rates,
}

/// One model's entry of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPrice {
    pub model: String,
    pub aliases: Vec<String>,
    pub rates: Rates,
    pub long_context: Option<LongContext>,
    /// Where the prices were read.
    pub source: String,
    /// When they were last checked against `source` (YYYY-MM-DD).
    pub as_of: String,
}

/// An amount of money, exact, in picodollars (10⁻¹² USD).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cost(u128);

const PICO_PER_MICRO: u128 = 1_000_000;

impl Cost {
    pub fn from_picodollars(pico: u128) -> Cost {
        Cost(pico)
    }

    pub fn from_micro_usd(micro: u64) -> Cost {
        Cost(u128::from(micro) * PICO_PER_MICRO)
    }

    pub fn picodollars(self) -> u128 {
        self.0
    }

    /// Rounded to the nearest micro-dollar, saturating.
    pub fn micro_usd(self) -> u64 {
        u64::try_from((self.0 + PICO_PER_MICRO / 2) / PICO_PER_MICRO).unwrap_or(u64::MAX)
    }

    /// In dollars, rounded to the micro-dollar (so JSON shows `0.000165`, not float noise).
    pub fn usd(self) -> f64 {
        self.micro_usd() as f64 / 1e6
    }
}

impl std::ops::Add for Cost {
    type Output = Cost;
    fn add(self, other: Cost) -> Cost {
        Cost(self.0.saturating_add(other.0))
    }
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, other: Cost) {
        *self = *self + other;
    }
}

impl std::fmt::Display for Cost {
    /// `$1.2345`; a cost under a hundredth of a cent but not zero is `<$0.0001`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const PICO_PER_TEN_THOUSANDTH: u128 = 100_000_000;
        if self.0 > 0 && self.0 < PICO_PER_TEN_THOUSANDTH / 2 {
            return f.write_str("<$0.0001");
        }
        let tenth_mils = (self.0 + PICO_PER_TEN_THOUSANDTH / 2) / PICO_PER_TEN_THOUSANDTH;
        write!(f, "${}.{:04}", tenth_mils / 10_000, tenth_mils % 10_000)
    }
}

/// The name a model is looked up by: lowercase, without a provider prefix (`anthropic/`,
/// `models/`), a bracketed variant (`[1m]`), a date suffix (`-20250929`, `-2025-08-07`,
/// `@20250929`), with dots as dashes (`claude-sonnet-4.5` is `claude-sonnet-4-5`,
/// `gpt-5.1` is `gpt-5-1`). Table names and aliases are normalized the same way.
pub fn normalize_model(name: &str) -> String {
    let mut name = name.trim();
    if let Some(open) = name.rfind('[')
        && name.ends_with(']')
    {
        name = &name[..open];
    }
    if let Some(slash) = name.rfind('/') {
        name = &name[slash + 1..];
    }
    let mut name = name.to_ascii_lowercase();
    strip_date(&mut name);
    name.replace('.', "-")
}

/// Removes a trailing `-YYYYMMDD`, `@YYYYMMDD` or `-YYYY-MM-DD`.
fn strip_date(name: &mut String) {
    let bytes = name.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    let len = bytes.len();
    if len > 9 && matches!(bytes[len - 9], b'-' | b'@') && digits(len - 8..len) {
        name.truncate(len - 9);
    } else if len > 11
        && bytes[len - 11] == b'-'
        && digits(len - 10..len - 6)
        && bytes[len - 6] == b'-'
        && digits(len - 5..len - 3)
        && bytes[len - 3] == b'-'
        && digits(len - 2..len)
    {
        name.truncate(len - 11);
    }
}

/// The table: entries in file order, and every normalized name and alias to its entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTable {
    models: Vec<ModelPrice>,
    by_name: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    #[serde(default, rename = "about")]
    _about: String,
    models: Vec<EntryFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    model: String,
    #[serde(default)]
    aliases: Vec<String>,
    input: f64,
    output: f64,
    cache_read: f64,
    cache_write: f64,
    #[serde(default)]
    long_context: Option<LongContextFile>,
    source: String,
    as_of: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LongContextFile {
    above_prompt_tokens: u64,
    input: f64,
    output: f64,
    cache_read: f64,
    cache_write: f64,
}

/// No model costs a million dollars per million tokens: a price over it is a typo.
const MAX_MICRO_PER_MTOK: f64 = 1e12;

fn micro(model: &str, field: &'static str, usd: f64) -> Result<u64, PricingError> {
    let scaled = usd * 1e6;
    let whole = scaled.round();
    // A price finer than a micro-dollar per million tokens is not a published price.
    if !usd.is_finite() || usd < 0.0 || whole > MAX_MICRO_PER_MTOK || (scaled - whole).abs() > 1e-3
    {
        return Err(PricingError::InvalidPrice {
            model: model.to_owned(),
            field,
            value: usd.to_string(),
        });
    }
    Ok(whole as u64)
}

fn rates(
    model: &str,
    prefix: &'static [&'static str; 4],
    prices: [f64; 4],
) -> Result<Rates, PricingError> {
    Ok(Rates {
        input: micro(model, prefix[0], prices[0])?,
        output: micro(model, prefix[1], prices[1])?,
        cache_read: micro(model, prefix[2], prices[2])?,
        cache_write: micro(model, prefix[3], prices[3])?,
    })
}

impl PriceTable {
    /// Reads a table in the format of `core/pricing.json`.
    pub fn parse(json: &str) -> Result<PriceTable, PricingError> {
        let file: TableFile =
            serde_json::from_str(json).map_err(|e| PricingError::Malformed(e.to_string()))?;
        let mut table = PriceTable {
            models: Vec::with_capacity(file.models.len()),
            by_name: HashMap::new(),
        };
        for entry in file.models {
            let model = entry.model.trim().to_owned();
            if entry.source.trim().is_empty() {
                return Err(PricingError::MissingProvenance {
                    model,
                    field: "source",
                });
            }
            if entry.as_of.trim().is_empty() {
                return Err(PricingError::MissingProvenance {
                    model,
                    field: "as_of",
                });
            }
            let base = rates(
                &model,
                &["input", "output", "cache_read", "cache_write"],
                [
                    entry.input,
                    entry.output,
                    entry.cache_read,
                    entry.cache_write,
                ],
            )?;
            let long_context = match entry.long_context {
                None => None,
                Some(long) if long.above_prompt_tokens == 0 => {
                    return Err(PricingError::ZeroThreshold { model });
                }
                Some(long) => Some(LongContext {
                    above_prompt_tokens: long.above_prompt_tokens,
                    rates: rates(
                        &model,
                        &[
                            "long_context.input",
                            "long_context.output",
                            "long_context.cache_read",
                            "long_context.cache_write",
                        ],
                        [long.input, long.output, long.cache_read, long.cache_write],
                    )?,
                }),
            };
            let index = table.models.len();
            for name in std::iter::once(&model).chain(&entry.aliases) {
                let key = normalize_model(name);
                if key.is_empty() {
                    return Err(PricingError::EmptyName);
                }
                if let Some(&other) = table.by_name.get(&key) {
                    let first = if other == index {
                        model.clone()
                    } else {
                        table.models[other].model.clone()
                    };
                    return Err(PricingError::DuplicateName {
                        name: key,
                        first,
                        second: model,
                    });
                }
                table.by_name.insert(key, index);
            }
            table.models.push(ModelPrice {
                model,
                aliases: entry.aliases,
                rates: base,
                long_context,
                source: entry.source,
                as_of: entry.as_of,
            });
        }
        Ok(table)
    }

    /// The table compiled into this build (`core/pricing.json`).
    pub fn embedded() -> Result<PriceTable, PricingError> {
        PriceTable::parse(EMBEDDED_TABLE)
    }

    pub fn models(&self) -> &[ModelPrice] {
        &self.models
    }

    /// The entry for a model name as an agent logged it, if the table has one.
    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        self.by_name
            .get(&normalize_model(model))
            .map(|&index| &self.models[index])
    }

    /// What one model call's usage cost; `None` for a model the table does not name.
    pub fn cost(&self, model: &str, usage: &TokenUsage) -> Option<Cost> {
        self.lookup(model).map(|price| price.cost(usage))
    }
}

impl ModelPrice {
    /// The cost of one model call. `reasoning` is part of `output` (the data model counts it
    /// there), so it is not charged again.
    pub fn cost(&self, usage: &TokenUsage) -> Cost {
        let prompt = usage
            .input
            .saturating_add(usage.cache_read)
            .saturating_add(usage.cache_creation);
        let rates = match &self.long_context {
            Some(long) if prompt > long.above_prompt_tokens => &long.rates,
            _ => &self.rates,
        };
        let part = |tokens: u64, rate: u64| u128::from(tokens) * u128::from(rate);
        Cost(
            part(usage.input, rates.input)
                + part(usage.output, rates.output)
                + part(usage.cache_read, rates.cache_read)
                + part(usage.cache_creation, rates.cache_write),
        )
    }
}

fn add_tokens(total: &mut TokenUsage, usage: &TokenUsage) {
    total.input = total.input.saturating_add(usage.input);
    total.output = total.output.saturating_add(usage.output);
    total.cache_read = total.cache_read.saturating_add(usage.cache_read);
    total.cache_creation = total.cache_creation.saturating_add(usage.cache_creation);
    total.reasoning = total.reasoning.saturating_add(usage.reasoning);
}

/// A session's tokens and what they cost: the usage of its messages and its usage events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageTotals {
    pub tokens: TokenUsage,
    /// The cost of the usage that could be priced.
    pub cost: Cost,
    /// Model calls (or events) whose cost is in `cost`.
    pub priced: u64,
    /// Models with usage the table has no price for (`""`: usage logged without a model).
    pub unpriced_models: BTreeSet<String>,
}

impl UsageTotals {
    /// Adds one model call's usage. `reported` is a cost the agent logged itself (micro-USD),
    /// which wins over the table: it is what was charged.
    pub fn add(
        &mut self,
        table: &PriceTable,
        model: &str,
        usage: &TokenUsage,
        reported: Option<u64>,
    ) {
        if *usage == TokenUsage::default() && reported.is_none() {
            return;
        }
        add_tokens(&mut self.tokens, usage);
        match reported
            .map(Cost::from_micro_usd)
            .or_else(|| table.cost(model, usage))
        {
            Some(cost) => {
                self.cost += cost;
                self.priced += 1;
            }
            None => {
                self.unpriced_models.insert(model.to_owned());
            }
        }
    }

    /// Totals of a session: its messages' `(model, usage)` and its usage events.
    pub fn of_session<'a>(
        table: &PriceTable,
        messages: impl IntoIterator<Item = (&'a str, &'a TokenUsage)>,
        events: &[UsageEvent],
    ) -> UsageTotals {
        let mut totals = UsageTotals::default();
        for (model, usage) in messages {
            totals.add(table, model, usage, None);
        }
        for event in events {
            totals.add(table, &event.model, &event.usage, event.cost_micro_usd);
        }
        totals
    }

    /// The cost in dollars, `None` when no usage could be priced (or there is none).
    pub fn cost_usd(&self) -> Option<f64> {
        (self.priced > 0).then(|| self.cost.usd())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u64, output: u64, cache_read: u64, cache_creation: u64) -> TokenUsage {
        TokenUsage {
            input,
            output,
            cache_read,
            cache_creation,
            reasoning: 0,
        }
    }

    fn entry(model: &str, extra: &str) -> String {
        format!(
            r#"{{"model": "{model}", "input": 3, "output": 15, "cache_read": 0.3,
                "cache_write": 3.75, "source": "test", "as_of": "2026-12-02"{extra}}}"#
        )
    }

    fn table(entries: &[String]) -> Result<PriceTable, PricingError> {
        PriceTable::parse(&format!(r#"{{"models": [{}]}}"#, entries.join(",")))
    }

    #[test]
    fn the_embedded_table_parses_and_every_entry_has_all_prices_and_provenance() {
        let table = PriceTable::embedded().expect("core/pricing.json parses");
        assert!(table.models().len() >= 30, "{}", table.models().len());
        for price in table.models() {
            let r = price.rates;
            // Every model charges for input and output; cache reads are cheaper than input.
            assert!(r.input > 0 && r.output > 0, "{}", price.model);
            assert!(
                r.cache_read > 0 && r.cache_read < r.input,
                "{}",
                price.model
            );
            assert!(r.cache_write >= r.input, "{}", price.model);
            assert!(price.source.starts_with("https://"), "{}", price.model);
            assert_eq!(price.as_of.len(), 10, "{}: as_of YYYY-MM-DD", price.model);
            if let Some(long) = price.long_context {
                assert!(long.rates.input > r.input, "{}", price.model);
            }
        }
    }

    #[test]
    fn every_field_is_required_in_the_file() {
        let json = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/pricing.json"))
            .expect("core/pricing.json is readable");
        assert_eq!(json, EMBEDDED_TABLE);
        assert!(table(&[entry("m", "")]).is_ok());
        for field in [
            "input",
            "output",
            "cache_read",
            "cache_write",
            "source",
            "as_of",
        ] {
            let mut without: serde_json::Value =
                serde_json::from_str(&entry("m", "")).expect("test entry is JSON");
            without.as_object_mut().expect("an object").remove(field);
            match table(&[without.to_string()]) {
                Err(PricingError::Malformed(reason)) => {
                    assert!(
                        reason.contains(&format!("missing field `{field}`")),
                        "{reason}"
                    )
                }
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_models_the_agents_log_are_found() {
        let table = PriceTable::embedded().expect("embedded table");
        for (logged, entry) in [
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
            ("claude-sonnet-4.5", "claude-sonnet-4-5"),
            ("anthropic/claude-sonnet-4-5", "claude-sonnet-4-5"),
            ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
            ("claude-sonnet-4-5[1m]", "claude-sonnet-4-5"),
            ("claude-opus-4-20250514", "claude-opus-4"),
            ("claude-opus-4-0", "claude-opus-4"),
            ("claude-opus-4-1-20250805", "claude-opus-4-1"),
            ("claude-haiku-4.5", "claude-haiku-4-5"),
            ("claude-3-5-haiku-20241022", "claude-3-5-haiku"),
            ("gpt-5-codex", "gpt-5-codex"),
            ("gpt-5.1-codex-max", "gpt-5.1-codex-max"),
            ("gpt-5.2-codex", "gpt-5.2-codex"),
            ("gpt-4o-2024-08-06", "gpt-4o"),
            ("GPT-4o-mini", "gpt-4o-mini"),
            ("gemini-2.5-pro", "gemini-2.5-pro"),
            ("models/gemini-2.5-flash", "gemini-2.5-flash"),
            ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ] {
            assert_eq!(
                table.lookup(logged).map(|p| p.model.as_str()),
                Some(entry),
                "{logged}"
            );
        }
    }

    #[test]
    fn a_model_not_in_the_table_has_no_cost() {
        let table = PriceTable::embedded().expect("embedded table");
        for unknown in [
            "",
            "<synthetic>",
            "claude-sonnet-9",
            "gpt-5-codex-ultra",
            "gemini-2.5",
        ] {
            assert_eq!(table.cost(unknown, &usage(10, 10, 0, 0)), None, "{unknown}");
        }
        // No prefix matching: a longer name is another model.
        assert!(table.lookup("gemini-2.5-flash-lite-preview").is_none());
    }

    #[test]
    fn a_call_costs_each_kind_of_token_at_its_rate() {
        let table = PriceTable::embedded().expect("embedded table");
        // Sonnet 4.5: $3 input, $15 output, $0.30 cache read, $3.75 cache write per MTok.
        let cost = table
            .cost(
                "claude-sonnet-4-5-20250929",
                &usage(1_000, 500, 20_000, 2_000),
            )
            .expect("priced");
        // 1000×3 + 500×15 + 20000×0.3 + 2000×3.75 = 3000 + 7500 + 6000 + 7500 µ$ = $0.024
        assert_eq!(cost.micro_usd(), 24_000);
        assert_eq!(cost.to_string(), "$0.0240");
        // Reasoning is part of output: counting it does not change the cost.
        let mut thinking = usage(1_000, 500, 20_000, 2_000);
        thinking.reasoning = 400;
        assert_eq!(table.cost("claude-sonnet-4-5", &thinking), Some(cost));
    }

    #[test]
    fn a_long_prompt_is_priced_at_the_long_context_rates() {
        let table = PriceTable::embedded().expect("embedded table");
        // Gemini 2.5 Pro: $1.25/$10 up to 200K prompt tokens, $2.50/$15 over.
        let at = table
            .cost("gemini-2.5-pro", &usage(200_000, 1_000, 0, 0))
            .expect("priced");
        assert_eq!(at.micro_usd(), 250_000 + 10_000);
        let over = table
            .cost("gemini-2.5-pro", &usage(150_000, 1_000, 50_001, 0))
            .expect("priced");
        // Cache reads count toward the prompt and are priced at the long rate too.
        assert_eq!(
            over.picodollars(),
            150_000 * 2_500_000 + 1_000 * 15_000_000 + 50_001 * 250_000
        );
    }

    #[test]
    fn costs_print_and_round_to_the_micro_dollar() {
        assert_eq!(Cost::default().to_string(), "$0.0000");
        assert_eq!(Cost::from_picodollars(1).to_string(), "<$0.0001");
        assert_eq!(Cost::from_micro_usd(50).to_string(), "$0.0001");
        assert_eq!(Cost::from_micro_usd(12_345_678).to_string(), "$12.3457");
        assert_eq!(Cost::from_picodollars(1_499_999).micro_usd(), 1);
        assert_eq!(Cost::from_picodollars(1_500_000).micro_usd(), 2);
        assert_eq!(Cost::from_micro_usd(165).usd(), 0.000165);
    }

    #[test]
    fn session_totals_add_messages_and_events_and_name_unpriced_models() {
        let table = PriceTable::embedded().expect("embedded table");
        let sonnet = usage(1_000, 100, 0, 0);
        let zero = TokenUsage::default();
        let unknown = usage(5, 5, 0, 0);
        let events = [
            UsageEvent {
                model: "gpt-5-codex".into(),
                usage: usage(10_000, 1_000, 0, 0),
                ..UsageEvent::default()
            },
            UsageEvent {
                model: "some-model".into(),
                usage: usage(1, 1, 0, 0),
                cost_micro_usd: Some(7),
                ..UsageEvent::default()
            },
        ];
        let totals = UsageTotals::of_session(
            &table,
            [
                ("claude-sonnet-4-5", &sonnet),
                ("<synthetic>", &zero),
                ("local-llama", &unknown),
                ("", &unknown),
            ],
            &events,
        );
        assert_eq!(totals.tokens, usage(11_011, 1_111, 0, 0));
        // sonnet 3000 + 1500; codex 12500 + 10000; the agent's own 7.
        assert_eq!(totals.cost, Cost::from_micro_usd(4_500 + 22_500 + 7));
        assert_eq!(totals.priced, 3);
        assert_eq!(
            totals.unpriced_models.iter().collect::<Vec<_>>(),
            ["", "local-llama"]
        );
        assert_eq!(totals.cost_usd(), Some(0.027007));
        assert_eq!(UsageTotals::default().cost_usd(), None);
    }

    #[test]
    fn a_malformed_table_is_refused_with_its_reason() {
        assert!(matches!(
            PriceTable::parse("not json"),
            Err(PricingError::Malformed(_))
        ));
        assert!(matches!(
            table(&[entry("m", r#", "colour": "red""#)]),
            Err(PricingError::Malformed(_))
        ));
        let negative = entry("m", "").replace("\"input\": 3", "\"input\": -3");
        assert_eq!(
            table(&[negative]),
            Err(PricingError::InvalidPrice {
                model: "m".into(),
                field: "input",
                value: "-3".into()
            })
        );
        let too_fine = entry("m", "").replace("0.3", "0.0000001");
        assert!(matches!(
            table(&[too_fine]),
            Err(PricingError::InvalidPrice {
                field: "cache_read",
                ..
            })
        ));
        assert_eq!(
            table(&[entry("claude-x-20250101", ""), entry("claude-x", "")]),
            Err(PricingError::DuplicateName {
                name: "claude-x".into(),
                first: "claude-x-20250101".into(),
                second: "claude-x".into()
            })
        );
        assert!(matches!(
            table(&[entry("a", r#", "aliases": ["b"]"#), entry("b", "")]),
            Err(PricingError::DuplicateName { .. })
        ));
        assert_eq!(
            table(&[entry("m", "").replace("\"source\": \"test\"", "\"source\": \" \"")]),
            Err(PricingError::MissingProvenance {
                model: "m".into(),
                field: "source"
            })
        );
        assert_eq!(table(&[entry("", "")]), Err(PricingError::EmptyName));
        let zero_tier = entry(
            "m",
            r#", "long_context": {"above_prompt_tokens": 0, "input": 6, "output": 30,
                "cache_read": 0.6, "cache_write": 7.5}"#,
        );
        assert_eq!(
            table(&[zero_tier]),
            Err(PricingError::ZeroThreshold { model: "m".into() })
        );
    }

    #[test]
    fn names_normalize_to_one_key() {
        for (name, key) in [
            ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
            ("gpt-4o-2024-08-06", "gpt-4o"),
            ("Vertex/claude-opus-4-1@20250805", "claude-opus-4-1"),
            ("gemini-2.5-pro", "gemini-2-5-pro"),
            ("claude-sonnet-4-5[1m]", "claude-sonnet-4-5"),
            // Not dates: kept.
            ("gpt-5-2025", "gpt-5-2025"),
            ("model-1234567x", "model-1234567x"),
        ] {
            assert_eq!(normalize_model(name), key, "{name}");
        }
    }
}
