//! `agentsync trust`: the key each origin signs with, as this machine pinned it (trust on first
//! sight), and the user's decisions: trust another key for an origin, or revoke an origin.

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
                    "{origin} is now trusted with key {} (instead of {}); the next sync imports what it signs",
                    key.to_hex(),
                    old.to_hex()
                ),
                None => format!(
                    "{origin} is now trusted with key {}; the next sync imports what it signs",
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

/// Every origin's key and state, or one origin's (`only`).
fn listing(
    own: &OriginId,
    own_key: &PublicKey,
    ring: &KeyRing,
    only: Option<&OriginId>,
) -> Result<Output> {
    let mut rows = vec![(own.clone(), Some(*own_key), None, false, true)];
    for (origin, key) in ring.pinned() {
        if origin != own {
            rows.push((
                origin.clone(),
                Some(*key),
                ring.refused(origin).copied(),
                ring.is_revoked(origin),
                false,
            ));
        }
    }
    for origin in ring.revoked() {
        if origin != own && ring.get(origin).is_none() {
            rows.push((origin.clone(), None, None, true, false));
        }
    }
    if let Some(only) = only {
        rows.retain(|row| row.0 == *only);
        if rows.is_empty() {
            rows.push((only.clone(), None, None, ring.is_revoked(only), false));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let value: Vec<_> = rows
        .iter()
        .map(|(origin, key, refused, revoked, local)| {
            json!({
                "origin": origin.as_str(),
                "key": key.map(|k| k.to_hex()),
                "local": local,
                "refused_key": refused.map(|k| k.to_hex()),
                "revoked": revoked,
            })
        })
        .collect();
    let mut text = String::new();
    for (origin, key, refused, revoked, local) in &rows {
        let key = key.map_or_else(|| "-".repeat(64), |k| k.to_hex());
        let state = if *local {
            "this machine".to_owned()
        } else if *revoked {
            "revoked".to_owned()
        } else if let Some(refused) = refused {
            format!(
                "pinned; refused another key {} (anyone who can write to a store can sign \
                 with a new key: compare it with that machine's own `agentsync status` before \
                 `agentsync trust {origin} {}`)",
                refused.to_hex(),
                refused.to_hex()
            )
        } else if key.starts_with('-') {
            "not seen yet: the first key it signs with is pinned".to_owned()
        } else {
            "pinned".to_owned()
        };
        text.push_str(&format!("{:<22} {key}  {state}\n", origin.as_str()));
    }
    Output::new(value, text.trim_end().to_owned())
}
