//! Reading the archive: `sessions`, `show`, `search`, `conflicts`, `status`.

use agentsync_archive::{Archive, SessionFilter};
use agentsync_core::sync::export::ExportState;
use agentsync_core::sync::import::ImportState;
use agentsync_core::sync::problem::Disposition;
use agentsync_core::{PriceTable, SessionGid, TokenUsage, UsageTotals};
use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use super::trust::KeyState;
use super::{Context, Output, format_time};

/// A session's token counts, all five even when zero (JSON readers need not guess).
#[derive(Serialize)]
struct TokenCounts {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_creation: u64,
    reasoning: u64,
}

/// What `sessions --json` and `show --json` add to a session object: its tokens and their cost,
/// computed now from the price table of this build (the archive keeps only the tokens).
#[derive(Serialize)]
struct UsageFields {
    tokens: TokenCounts,
    /// The cost of the usage whose model has a price; `null` when none has (or no usage).
    cost_usd: Option<f64>,
    /// Models with usage but no price (`""`: usage logged without a model).
    unpriced_models: Vec<String>,
}

impl UsageFields {
    fn of(totals: &UsageTotals) -> UsageFields {
        let t = &totals.tokens;
        UsageFields {
            tokens: TokenCounts {
                input: t.input,
                output: t.output,
                cache_read: t.cache_read,
                cache_creation: t.cache_creation,
                reasoning: t.reasoning,
            },
            cost_usd: totals.cost_usd(),
            unpriced_models: totals.unpriced_models.iter().cloned().collect(),
        }
    }
}

/// A session object with its usage fields beside its own.
#[derive(Serialize)]
struct WithUsage<'a, T: Serialize> {
    #[serde(flatten)]
    session: &'a T,
    #[serde(flatten)]
    usage: UsageFields,
}

fn session_totals(archive: &Archive, table: &PriceTable, gid: &SessionGid) -> Result<UsageTotals> {
    let (messages, events) = archive.session_usage(gid)?;
    Ok(UsageTotals::of_session(
        table,
        messages
            .iter()
            .map(|(model, usage)| (model.as_str(), usage)),
        &events,
    ))
}

/// `12345678` as `12,345,678`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `show`'s usage lines: the tokens and their cost, and the models without a price. Nothing
/// for a session whose log has no usage.
fn usage_text(totals: &UsageTotals) -> String {
    let t = &totals.tokens;
    if *t == TokenUsage::default() && totals.priced == 0 {
        return String::new();
    }
    let mut parts = vec![format!("{} in", grouped(t.input))];
    if t.reasoning > 0 {
        parts.push(format!(
            "{} out ({} reasoning)",
            grouped(t.output),
            grouped(t.reasoning)
        ));
    } else {
        parts.push(format!("{} out", grouped(t.output)));
    }
    if t.cache_read > 0 {
        parts.push(format!("{} cache read", grouped(t.cache_read)));
    }
    if t.cache_creation > 0 {
        parts.push(format!("{} cache write", grouped(t.cache_creation)));
    }
    let cost = match (totals.priced, totals.unpriced_models.is_empty()) {
        (0, _) => "cost unknown".to_owned(),
        (_, true) => format!("cost {}", totals.cost),
        (_, false) => format!("cost {} + unknown", totals.cost),
    };
    let mut text = format!("tokens {}  {cost}\n", parts.join(", "));
    if !totals.unpriced_models.is_empty() {
        let names: Vec<&str> = totals
            .unpriced_models
            .iter()
            .map(|m| if m.is_empty() { "(none)" } else { m.as_str() })
            .collect();
        text.push_str(&format!(
            "cost unknown for model{} {} (not in the price table)\n",
            if names.len() == 1 { "" } else { "s" },
            names.join(", ")
        ));
    }
    text
}

pub fn sessions(ctx: &Context, filter: &SessionFilter) -> Result<Output> {
    let archive = ctx.archive()?;
    let list = archive.sessions(filter)?;
    let table = PriceTable::embedded()?;
    let mut listed = Vec::with_capacity(list.len());
    for s in &list {
        let totals = session_totals(&archive, &table, &s.id.parse()?)?;
        listed.push(WithUsage {
            session: s,
            usage: UsageFields::of(&totals),
        });
    }
    let mut text = String::new();
    for s in &list {
        let flags = format!(
            "{}{}",
            if s.starred { "*" } else { " " },
            if s.trashed { "T" } else { " " }
        );
        let tags = if s.tags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", s.tags.join(", "))
        };
        text.push_str(&format!(
            "{flags} {}  {:>5} msgs  {}  {}  {}{tags}\n",
            format_time(s.started_ms),
            s.message_count,
            s.id,
            s.project,
            s.display_name,
        ));
    }
    let filtered = filter.search.is_some()
        || filter.starred
        || filter.trashed
        || filter.tag.is_some()
        || filter.origin.is_some();
    if list.is_empty() && filtered {
        text.push_str("no sessions match");
    } else if list.is_empty() {
        text.push_str("no sessions yet (run `agentsync ingest` or `agentsync sync`)");
    }
    Output::new(&listed, text)
}

/// How much of a message `show` prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShowOptions {
    /// Tool inputs and results whole (otherwise cut with a visible "…").
    pub full: bool,
    /// Thinking whole (otherwise its first line, cut).
    pub thinking: bool,
    /// Messages on branches the user left too, marked (otherwise each run of them is one line).
    pub all: bool,
}

/// Tool inputs and results longer than this are cut (without `--full`).
const TOOL_TEXT: usize = 400;

/// `text` whole, or cut at `max` characters with a visible mark of what was left out.
fn cut(text: &str, max: usize, full: bool) -> String {
    let text = text.trim_end();
    let total = text.chars().count();
    if full || total <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().take(max).collect();
    format!(
        "{kept}… [{} more characters; --full shows all]",
        total - max
    )
}

/// Indents every line after the first by `indent`.
fn indented(text: &str, indent: &str) -> String {
    text.replace('\n', &format!("\n{indent}"))
}

pub fn show(ctx: &Context, session: &str, options: ShowOptions) -> Result<Output> {
    let archive = ctx.archive()?;
    let gid = archive.resolve(session)?;
    let detail = archive.session_detail(&gid)?;
    let s = &detail.summary;
    let mut text = format!(
        "{}\n{}\nagent {}  project {}  started {}  {} messages\n",
        s.display_name,
        s.id,
        s.agent,
        s.project,
        format_time(s.started_ms),
        s.message_count
    );
    let totals = UsageTotals::of_session(
        &PriceTable::embedded()?,
        detail.messages.iter().map(|m| (m.model.as_str(), &m.usage)),
        &detail.usage_events,
    );
    text.push_str(&usage_text(&totals));
    if !s.tags.is_empty() {
        text.push_str(&format!("tags: {}\n", s.tags.join(", ")));
    }
    if !s.note.is_empty() {
        text.push_str(&format!("note: {}\n", s.note));
    }
    let mut messages = detail.messages.iter().peekable();
    while let Some(m) = messages.next() {
        if m.abandoned && !options.all {
            // The transcript as the user went on with it: an edited prompt's first attempt
            // is one line.
            let mut last = m.ordinal;
            let mut count = 1;
            while let Some(next) = messages.next_if(|next| next.abandoned) {
                last = next.ordinal;
                count += 1;
            }
            text.push_str(&abandoned_run(m.ordinal, last, count));
            continue;
        }
        let pin = detail.pins.iter().find(|p| {
            p.ordinal == Some(m.ordinal)
                || (!m.source_uuid.is_empty() && p.source_uuid == m.source_uuid)
        });
        let pinned = match pin {
            Some(p) if !p.note.is_empty() => format!(" (pinned: {})", p.note),
            Some(_) => " (pinned)".to_owned(),
            None => String::new(),
        };
        text.push_str(&format!(
            "\n#{} {}{pinned} {}{}\n",
            m.ordinal,
            m.role,
            format_time(m.timestamp_ms),
            if m.abandoned {
                " (abandoned branch)"
            } else {
                ""
            }
        ));
        if !m.thinking.is_empty() {
            let thinking = if options.thinking {
                indented(m.thinking.trim_end(), "    ")
            } else {
                let first = m.thinking.lines().next().unwrap_or_default();
                let more = m.thinking.trim_end() != first;
                format!(
                    "{}{}",
                    cut(first, 160, false),
                    if more {
                        " … [--thinking shows all]"
                    } else {
                        ""
                    }
                )
            };
            text.push_str(&format!("  [thinking] {thinking}\n"));
        }
        if !m.content.is_empty() {
            text.push_str(m.content.trim_end());
            text.push('\n');
        }
        for call in &m.tool_calls {
            text.push_str(&format!(
                "  → {} {}\n",
                call.name,
                indented(&cut(&call.input, TOOL_TEXT, options.full), "    ")
            ));
            if !call.result.is_empty() {
                text.push_str(&format!(
                    "  {} {}\n",
                    if call.is_error { "✗" } else { "←" },
                    indented(&cut(&call.result, TOOL_TEXT, options.full), "    ")
                ));
            }
        }
    }
    Output::new(
        WithUsage {
            session: &detail,
            usage: UsageFields::of(&totals),
        },
        text,
    )
}

/// The line standing for `count` messages of an abandoned branch, `#first` to `#last`.
fn abandoned_run(first: u64, last: u64, count: usize) -> String {
    let (messages, ordinals) = if count == 1 {
        ("1 message".to_owned(), format!("#{first}"))
    } else {
        (format!("{count} messages"), format!("#{first}–#{last}"))
    };
    format!("\n[{messages} on an abandoned branch, {ordinals}: --all shows them]\n")
}

pub fn search(ctx: &Context, query: &str, limit: u64) -> Result<Output> {
    let archive = ctx.archive()?;
    let hits = archive.search(query, limit)?;
    let mut text = String::new();
    for h in &hits {
        let place = match h.found_in.as_str() {
            "message" => String::new(),
            other => format!(" ({other})"),
        };
        text.push_str(&format!(
            "{} #{} {}{place}  {}\n    {}\n",
            h.session,
            h.ordinal,
            h.role,
            h.display_name,
            h.snippet.replace('\n', " ")
        ));
    }
    if hits.is_empty() {
        text.push_str("no matches");
    }
    Output::new(&hits, text)
}

pub fn conflicts(ctx: &Context, session: Option<&str>) -> Result<Output> {
    let archive = ctx.archive()?;
    let gid = session.map(|s| archive.resolve(s)).transpose()?;
    let list = archive.conflicts(gid.as_ref())?;
    let mut text = String::new();
    for c in &list {
        text.push_str(&format!(
            "{} {}: kept {} ({} {}), lost {} ({} {})\n",
            c.session,
            c.field,
            c.winner.value,
            c.winner.origin,
            c.winner.hlc,
            c.loser.value,
            c.loser.origin,
            c.loser.hlc
        ));
    }
    if list.is_empty() {
        text.push_str("no conflicts");
    }
    Output::new(&list, text)
}

pub fn status(ctx: &Context) -> Result<Output> {
    let archive = ctx.archive()?;
    let (origin, key) = ctx.identity(&archive)?;
    let export: Option<ExportState> = archive.export_state()?;
    let ledger = archive.ledger()?;
    let import: ImportState = archive.state("import")?.unwrap_or_default();
    let counts = archive.origin_counts()?;
    let mut names: std::collections::BTreeSet<String> =
        counts.iter().map(|c| c.origin.clone()).collect();
    names.insert(origin.to_string());
    names.extend(import.origins.keys().map(|o| o.to_string()));
    let origins: Vec<serde_json::Value> = names
        .iter()
        .map(|name| {
            let held = counts.iter().find(|c| &c.origin == name);
            let parsed: Option<agentsync_core::OriginId> = name.parse().ok();
            let (root, published) = if name == origin.as_str() {
                (
                    export
                        .as_ref()
                        .and_then(|e| e.root.as_ref())
                        .map(|r| r.to_string()),
                    export.as_ref().map(|e| e.sessions.len()),
                )
            } else {
                let progress = parsed
                    .as_ref()
                    .and_then(|o| import.origins.get(o).map(|p| (o, p)));
                // Purged sessions stay in the import state (so they are never fetched again)
                // but are no longer published.
                let published = progress.map(|(o, p)| {
                    p.sessions
                        .keys()
                        .filter(|n| !ledger.is_purged(&SessionGid::new(o.clone(), (*n).clone())))
                        .count()
                });
                (
                    progress
                        .and_then(|(_, p)| p.root.as_ref())
                        .map(|r| r.to_string()),
                    published,
                )
            };
            let keys = parsed
                .as_ref()
                .map(|o| KeyState::of(&import.keyring, &origin, &key.public(), o));
            json!({
                "origin": name,
                "local": name == origin.as_str(),
                "key": keys.as_ref().and_then(|k| k.key).map(|k| k.to_hex()),
                "refused_key": keys.as_ref().and_then(|k| k.refused).map(|k| k.to_hex()),
                "revoked": keys.as_ref().is_some_and(|k| k.revoked),
                "newest_checkpoint": root,
                "published_sessions": published.unwrap_or(0),
                "local_sessions": held.map_or(0, |c| c.sessions),
                "messages": held.map_or(0, |c| c.messages),
            })
        })
        .collect();
    let problems = archive.problems()?;
    let quarantined: Vec<_> = problems
        .iter()
        .filter(|p| p.state == Disposition::Quarantined)
        .collect();
    let deferred: Vec<_> = problems
        .iter()
        .filter(|p| p.state == Disposition::Deferred)
        .collect();
    let last = archive.last_sync()?;
    let unpublished = archive.unpublished_events()?.len();
    let malformed = crate::ingest::pass::malformed_logs(&archive)?;
    let value = json!({
        "malformed_logs": malformed,
        "origin": origin.as_str(),
        "public_key": key.public().to_hex(),
        "data_dir": ctx.home.data_dir.display().to_string(),
        "target": ctx.config.target,
        "origins": origins,
        "conflicts": archive.count_conflicts()?,
        "deferred": deferred,
        "quarantined": quarantined,
        "deferred_events": archive.count_deferred_events()?,
        "unpublished_events": unpublished,
        "last_sync": last,
    });
    let mut text = format!("origin {origin}\n\n");
    text.push_str("origin                         local  published  checkpoint\n");
    for o in &origins {
        text.push_str(&format!(
            "{:<30} {:>5}  {:>9}  {}\n",
            o["origin"].as_str().unwrap_or_default(),
            o["local_sessions"].as_u64().unwrap_or(0),
            o["published_sessions"].as_u64().unwrap_or(0),
            o["newest_checkpoint"].as_str().unwrap_or("-"),
        ));
    }
    for o in &origins {
        let name = o["origin"].as_str().unwrap_or_default();
        if o["revoked"] == true {
            text.push_str(&format!(
                "{name} is revoked (`agentsync trust` lists the keys)\n"
            ));
        } else if let Some(refused) = o["refused_key"].as_str() {
            text.push_str(&format!(
                "{name} signed with another key than the pinned one, refused: {refused} \
                 (compare it with that machine's own `status` before `agentsync trust {name} \
                 {refused}`)\n"
            ));
        }
    }
    text.push_str(&format!(
        "\nconflicts {}  deferred {}  quarantined {}  unpublished edits {}  deferred edits {}\n",
        value["conflicts"],
        deferred.len(),
        quarantined.len(),
        unpublished,
        value["deferred_events"],
    ));
    if !malformed.is_empty() {
        text.push_str(&format!(
            "logs with malformed lines (skipped): {}\n",
            malformed.len()
        ));
        for m in &malformed {
            text.push_str(&format!(
                "  {}: {} (first: {})\n",
                m.path,
                super::count(m.lines as usize, "line"),
                m.first
            ));
        }
    }
    for p in quarantined.iter().chain(&deferred) {
        text.push_str(&format!(
            "  {} {} {}: {}{}\n",
            p.state.name(),
            p.class,
            p.key,
            p.reason,
            super::sync::remedy(p, origin.as_str())
        ));
    }
    match &last {
        Some(run) => text.push_str(&format!(
            "last sync {} with {}",
            format_time(Some(run.finished_ms)),
            if run.target.is_empty() {
                "(no target)"
            } else {
                &run.target
            }
        )),
        None => text.push_str("never synced"),
    }
    Output::new(value, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        for (n, text) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (12_345_678, "12,345,678"),
        ] {
            assert_eq!(grouped(n), text);
        }
    }

    #[test]
    fn the_usage_lines_say_what_is_priced_and_what_is_not() {
        let table = PriceTable::embedded().expect("embedded table");
        assert_eq!(usage_text(&UsageTotals::default()), "");
        let call = TokenUsage {
            input: 1_000,
            output: 200,
            reasoning: 50,
            ..TokenUsage::default()
        };
        let mut totals = UsageTotals::default();
        totals.add(&table, "gpt-5-codex", &call, None);
        assert_eq!(
            usage_text(&totals),
            "tokens 1,000 in, 200 out (50 reasoning)  cost $0.0033\n"
        );
        totals.add(&table, "", &call, None);
        totals.add(&table, "mystery-1", &call, None);
        assert_eq!(
            usage_text(&totals),
            "tokens 3,000 in, 600 out (150 reasoning)  cost $0.0033 + unknown\n\
             cost unknown for models (none), mystery-1 (not in the price table)\n"
        );
        let mut unknown = UsageTotals::default();
        unknown.add(&table, "mystery-1", &call, None);
        assert_eq!(
            usage_text(&unknown),
            "tokens 1,000 in, 200 out (50 reasoning)  cost unknown\n\
             cost unknown for model mystery-1 (not in the price table)\n"
        );
    }
}
