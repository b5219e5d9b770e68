//! Curation ledger throughput: events per second replayed into the registers.
//!
//! `cargo bench -p agentsync-core --bench ledger [-- --quick]`: 1 M events over 10 k sessions
//! from 5 origins (100 k events with `--quick`), replayed in one call, in batches of 1 000 (how
//! a sync delivers them), and again as pure duplicates; plus decoding and signature checking of
//! the same events packed in signed batches of 1 000.

use std::time::Instant;

use agentsync_core::{
    Anchor, Event, EventBatch, Hlc, HlcClock, LedgerState, Op, OrderKey, OriginId, OriginKey,
    SessionGid, SignedEvent,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn corpus(events: usize, sessions: usize, informed_percent: u64) -> Vec<SignedEvent> {
    let mut rng = Rng(42);
    let origins: Vec<OriginId> = (0..5)
        .map(|i| format!("machine-{i}").parse().unwrap())
        .collect();
    let gids: Vec<SessionGid> = (0..sessions)
        .map(|i| {
            format!("{}~session-{i:06}", origins[i % 5])
                .parse()
                .unwrap()
        })
        .collect();
    let mut out: Vec<SignedEvent> = Vec::with_capacity(events);
    let mut last: std::collections::HashMap<(SessionGid, agentsync_core::Field), OrderKey> =
        std::collections::HashMap::new();
    let t0 = 1_764_078_194_000u64;
    for i in 0..events {
        let origin = origins[rng.below(5) as usize].clone();
        let session = gids[rng.below(sessions as u64) as usize].clone();
        let op = match rng.below(8) {
            0 => Op::Star,
            1 => Op::Unstar,
            2 => Op::Rename {
                name: format!("name {}", rng.below(50)),
            },
            3 => Op::TagAdd {
                tag: format!("tag{}", rng.below(5)),
            },
            4 => Op::TagRemove {
                tag: format!("tag{}", rng.below(5)),
            },
            5 => Op::SetNote {
                note: format!("note {}", rng.below(100)),
            },
            6 => Op::Pin {
                anchor: Anchor {
                    source_uuid: format!("uuid-{}", rng.below(20)),
                    ordinal: None,
                },
                note: String::new(),
            },
            _ => Op::Trash,
        };
        // An informed edit saw the field's latest value; the others are concurrent.
        let field = agentsync_core::ledger::field_value(&op).map(|(f, _)| f);
        let slot = field.map(|f| (session.clone(), f));
        let prev = if rng.below(100) < informed_percent {
            slot.as_ref().and_then(|s| last.get(s).cloned())
        } else {
            None
        };
        let event = Event {
            hlc: Hlc::new(t0 + i as u64 / 4, (i % 4) as u16).unwrap(),
            session,
            prev,
            op,
        };
        let signed = SignedEvent {
            origin,
            id: event.id(),
            event,
        };
        if let Some(slot) = slot {
            last.insert(slot, signed.key());
        }
        out.push(signed);
    }
    out
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, sessions) = if quick {
        (100_000, 10_000)
    } else {
        (1_000_000, 10_000)
    };
    let events = corpus(n, sessions, 90);
    let wall = u64::MAX / 4;
    let all = |_: &SessionGid| true;
    let rate = |secs: f64| n as f64 / secs;
    let mut rows = Vec::new();

    let mut state = LedgerState::default();
    let mut clock = HlcClock::default();
    let t = Instant::now();
    let r = state.replay(&mut clock, wall, events.iter().cloned(), &all);
    let one_call = t.elapsed().as_secs_f64();
    assert_eq!(r.applied, n);
    rows.push(("replay, one call", rate(one_call), one_call));
    let conflicts = state.conflicts().len();

    let t = Instant::now();
    let r = state.replay(&mut clock, wall, events.iter().cloned(), &all);
    let dup = t.elapsed().as_secs_f64();
    assert_eq!(r.applied, 0);
    rows.push(("re-replay, all duplicates", rate(dup), dup));

    let mut batched = LedgerState::default();
    let mut clock = HlcClock::default();
    let t = Instant::now();
    for chunk in events.chunks(1000) {
        batched.replay(&mut clock, wall, chunk.iter().cloned(), &all);
    }
    let in_batches = t.elapsed().as_secs_f64();
    rows.push(("replay, batches of 1 000", rate(in_batches), in_batches));
    assert_eq!(
        serde_json::to_string(&batched).unwrap(),
        serde_json::to_string(&state).unwrap()
    );

    // Worst case: no edit saw another, so almost every loser is a conflict.
    let adversarial = corpus(n, sessions, 0);
    let mut worst = LedgerState::default();
    let mut clock = HlcClock::default();
    let t = Instant::now();
    worst.replay(&mut clock, wall, adversarial.iter().cloned(), &all);
    let secs = t.elapsed().as_secs_f64();
    let worst_conflicts = worst.conflicts().len();
    drop(worst);
    drop(adversarial);
    rows.push(("replay, one call, no informed edits", rate(secs), secs));

    // Signed batches of 1 000 events of one origin each.
    let key = OriginKey::from_secret([5; 32]);
    let origin: OriginId = "machine-0".parse().unwrap();
    let encoded: Vec<Vec<u8>> = events
        .chunks(1000)
        .map(|chunk| {
            EventBatch {
                origin: origin.clone(),
                events: chunk.iter().map(|e| e.event.clone()).collect(),
            }
            .encode(&key)
            .unwrap()
        })
        .collect();
    let bytes: usize = encoded.iter().map(Vec::len).sum();
    let t = Instant::now();
    let mut decoded = 0;
    for b in &encoded {
        decoded += EventBatch::decode(b).unwrap().batch.events.len();
    }
    let decode = t.elapsed().as_secs_f64();
    assert_eq!(decoded, n);
    rows.push(("decode + verify signed batches", rate(decode), decode));

    println!(
        "Ledger replay: {n} events over {sessions} sessions, 5 origins, 90% informed edits \
         ({conflicts} conflicts; {worst_conflicts} with none informed); \
         batches {:.1} MB; peak RSS of the bench process {:.0} MB\n",
        bytes as f64 / 1e6,
        peak_rss_mb()
    );
    println!("| step | events/s | seconds |");
    println!("|---|---:|---:|");
    for (name, per_s, secs) in rows {
        println!("| {name} | {:.0} | {secs:.2} |", per_s);
    }
}
