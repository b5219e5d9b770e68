//! `agentsync trust`: the key each origin signs with, as this machine pinned it (trust on first
//! sight), and the user's decisions: trust another key for an origin, or revoke an origin.

use std::collections::BTreeSet;

use anyhow::{Context as _, Result, bail};
use serde_json::json;

use agentsync_core::{KeyRing, OriginId, PublicKey};

use super::{Context, Output};

/// What the user asked `trust` to do.
pub enum Decision {
    Show,
    Trust(String),
    Revoke,
}

pub fn trust(ctx: &Context, origin: Option<&str>, decision: Decision) -> Result<Output> {
    let mut archive = ctx.archive()?;
    let (own, own_key) = ctx.identity(&archive)?;
    let Some(origin) = origin else {
        return listing(&own, &own_key.public(), &archive.keyring()?, None);
    };
    let origin: OriginId = origin
        .parse()
        .with_context(|| format!("{origin:?} is not an origin id"))?;
    if origin == own && !matches!(decision, Decision::Show) {
        bail!(
            "{origin} is this machine: its key is the one in its own archive, not a matter of trust"
        );
    }
    let before = archive.keyring()?;
    let text = match decision {
        Decision::Show => return listing(&own, &own_key.public(), &before, Some(&origin)),
        Decision::Trust(key) => {
            let key: PublicKey = key.parse()?;
            archive.decide_trust(|import| import.trust(origin.clone(), key))?;
            match before.get(&origin) {
                Some(old) if *old == key && !before.is_revoked(&origin) => {
                    format!("{origin} was already trusted with key {}", key.to_hex())
                }
                Some(old) if *old == key => {
                    format!("{origin} is trusted again, with key {}", key.to_hex())
                }
                Some(old) => format!(
                    "{origin} is now trusted with key {} (instead of {}): what it signs with it \
                     is accepted from now on, what the old key signed is refused",
                    key.to_hex(),
                    old.to_hex()
                ),
                None => format!(
                    "{origin} is now trusted with key {}: what it signs with it is accepted \
                     from now on",
                    key.to_hex()
                ),
            }
        }
        Decision::Revoke => {
            archive.decide_trust(|import| import.revoke(origin.clone()))?;
            format!(
                "{origin} is revoked: nothing it signs is accepted from now on; what was imported \
                 stays (`agentsync trust {origin} KEY` trusts it again)"
            )
        }
    };
    let after = archive.keyring()?;
    let mut out = listing(&own, &own_key.public(), &after, Some(&origin))?;
    out.text = text;
    Ok(out)
}

/// What this machine holds of one origin's key: its own key, or the one it pinned, another key
/// it refused, and whether its user revoked the origin. This machine's own key is no matter of
/// trust: never refused or revoked.
pub struct KeyState {
    pub local: bool,
    pub key: Option<PublicKey>,
    pub refused: Option<PublicKey>,
    pub revoked: bool,
}

impl KeyState {
    pub fn of(ring: &KeyRing, own: &OriginId, own_key: &PublicKey, origin: &OriginId) -> Self {
        if origin == own {
            return KeyState {
                local: true,
                key: Some(*own_key),
                refused: None,
                revoked: false,
            };
        }
        KeyState {
            local: false,
            key: ring.get(origin).copied(),
            refused: ring.refused(origin).copied(),
            revoked: ring.is_revoked(origin),
        }
    }
}

/// Every origin's key and state (this machine, pinned and revoked origins), or one origin's.
fn listing(
    own: &OriginId,
    own_key: &PublicKey,
    ring: &KeyRing,
    only: Option<&OriginId>,
) -> Result<Output> {
    let origins: BTreeSet<&OriginId> = match only {
        Some(origin) => [origin].into(),
        None => ring
            .pinned()
            .map(|(origin, _)| origin)
            .chain(ring.revoked())
            .chain([own])
            .collect(),
    };
    let rows: Vec<(&OriginId, KeyState)> = origins
        .into_iter()
        .map(|origin| (origin, KeyState::of(ring, own, own_key, origin)))
        .collect();
    let value: Vec<_> = rows
        .iter()
        .map(|(origin, state)| {
            json!({
                "origin": origin.as_str(),
                "key": state.key.map(|k| k.to_hex()),
                "local": state.local,
                "refused_key": state.refused.map(|k| k.to_hex()),
                "revoked": state.revoked,
            })
        })
        .collect();
    let mut text = String::new();
    for (origin, state) in &rows {
        let key = state.key.map_or_else(|| "-".repeat(64), |k| k.to_hex());
        let summary = if state.local {
            "this machine".to_owned()
        } else if state.revoked {
            "revoked".to_owned()
        } else if let Some(refused) = state.refused {
            format!(
                "pinned; refused another key {} (anyone who can write to a store can sign \
                 with a new key: compare it with that machine's own `agentsync status` before \
                 `agentsync trust {origin} {}`)",
                refused.to_hex(),
                refused.to_hex()
            )
        } else if state.key.is_none() {
            "not seen yet: the first key it signs with is pinned".to_owned()
        } else {
            "pinned".to_owned()
        };
        text.push_str(&format!("{:<22} {key}  {summary}\n", origin.as_str()));
    }
    Output::new(value, text.trim_end().to_owned())
}
