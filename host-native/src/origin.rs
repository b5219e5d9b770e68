//! This machine's identity: its origin id and signing key, minted once and stored in the
//! archive (the one place that is read; DESIGN edge case 2). A recovery copy beside the
//! archive, `identity.json`, is written from it and read by nothing but `agentsync rebuild`,
//! when the database is damaged or gone: without it, a lost database would mean a new origin,
//! and every session of this machine published a second time under another name.

use std::path::{Path, PathBuf};

use agentsync_archive::Archive;
use agentsync_core::{OriginId, OriginKey};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The stored identity, or a new one (`requested` name, else `<host>-<6 hex>`); its recovery
/// copy in `data_dir` is kept current.
pub fn ensure(
    archive: &Archive,
    data_dir: &Path,
    requested: Option<&str>,
    now_ms: i64,
) -> Result<(OriginId, OriginKey)> {
    let identity = stored_or_new(archive, requested, now_ms)?;
    keep_recovery_copy(data_dir, &identity)?;
    Ok(identity)
}

fn stored_or_new(
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

#[derive(Serialize, Deserialize, PartialEq)]
struct RecoveryCopy {
    origin: String,
    /// The ed25519 signing key, hex.
    secret: String,
}

pub fn recovery_copy_path(data_dir: &Path) -> PathBuf {
    data_dir.join("identity.json")
}

/// Writes the recovery copy unless it already says the same (owner-only permissions: it
/// holds the signing key, like the database).
fn keep_recovery_copy(data_dir: &Path, (origin, key): &(OriginId, OriginKey)) -> Result<()> {
    let copy = RecoveryCopy {
        origin: origin.to_string(),
        secret: hex_of(&key.secret()),
    };
    let path = recovery_copy_path(data_dir);
    if let Ok(text) = std::fs::read_to_string(&path)
        && serde_json::from_str::<RecoveryCopy>(&text).ok().as_ref() == Some(&copy)
    {
        return Ok(());
    }
    let temporary = data_dir.join("identity.json.partial");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::io::Write::write_all(&mut file, serde_json::to_string_pretty(&copy)?.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, &path).with_context(|| format!("writing {}", path.display()))
}

/// The identity the recovery copy holds, if there is one.
pub fn read_recovery_copy(data_dir: &Path) -> Result<Option<(OriginId, OriginKey)>> {
    let path = recovery_copy_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let damaged = || format!("{} is damaged: it holds no origin and key", path.display());
    let copy: RecoveryCopy = serde_json::from_str(&text).with_context(damaged)?;
    let origin: OriginId = copy.origin.parse().with_context(damaged)?;
    let secret = secret_of(&copy.secret).with_context(damaged)?;
    Ok(Some((origin, OriginKey::from_secret(secret))))
}

fn secret_of(hex: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 || !hex.is_ascii() {
        bail!("the key is not 64 hex digits");
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
    }
    Ok(out)
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
