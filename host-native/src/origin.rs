//! This machine's identity: its origin id and signing key, minted once and stored in the
//! archive (the one place; DESIGN edge case 2).

use agentsync_archive::Archive;
use agentsync_core::{OriginId, OriginKey};
use anyhow::{Context, Result, bail};

/// The stored identity, or a new one (`requested` name, else `<host>-<6 hex>`).
pub fn ensure(
    archive: &Archive,
    requested: Option<&str>,
    now_ms: i64,
) -> Result<(OriginId, OriginKey)> {
    if let Some((origin, key)) = archive.identity()? {
        if let Some(wanted) = requested
            && wanted != origin.as_str()
        {
            bail!(
                "this archive's origin is {origin}; it cannot become {wanted} (an origin is \
                 minted once: use another --data-dir for another machine)"
            );
        }
        return Ok((origin, key));
    }
    let origin: OriginId = match requested {
        Some(name) => name
            .parse()
            .with_context(|| format!("{name:?} is not a valid origin id"))?,
        None => mint_origin()?,
    };
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let key = OriginKey::from_secret(secret);
    Ok(archive.create_identity(&origin, &key, now_ms)?)
}

/// `<sanitized host name>-<6 random hex>`, `[a-z0-9-]` only.
fn mint_origin() -> Result<OriginId> {
    let host = gethostname::gethostname().to_string_lossy().to_lowercase();
    let mut name: String = host
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    name = name.trim_matches('-').chars().take(40).collect();
    if name.is_empty() || name == "local" || name == "roots" {
        name = "machine".into();
    }
    let mut suffix = [0u8; 3];
    getrandom::fill(&mut suffix).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let id = format!("{name}-{}", hex_of(&suffix));
    id.parse()
        .with_context(|| format!("minted origin {id:?} is not valid"))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
