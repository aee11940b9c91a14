//! The admin token: from configuration or `BULKHEAD_ADMIN_TOKEN`; otherwise the one in
//! `<data-dir>/admin.token`, generated (mode 0600) on first start. The token itself is never
//! logged, only where it is. When a configured token replaces a generated one, the file is
//! removed: left behind, it looks like the credential to use and is refused.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};

use crate::config::ServerConfig;

pub const FILE_NAME: &str = "admin.token";

pub fn resolve(config: &ServerConfig) -> anyhow::Result<SecretString> {
    let path = config.engine.data_dir.join(FILE_NAME);
    if let Some(t) = &config.admin_token {
        tracing::info!("admin token taken from configuration");
        remove_if_stale(&path, t.expose_secret())?;
        return Ok(t.clone());
    }
    std::fs::create_dir_all(&config.engine.data_dir)
        .with_context(|| format!("creating {}", config.engine.data_dir.display()))?;
    if path.exists() {
        let token = read(&path)?;
        anyhow::ensure!(
            token.len() >= 16,
            "{} holds no usable token",
            path.display()
        );
        tracing::info!(path = %path.display(), "admin token read from file");
        return Ok(token.into());
    }
    let token = crate::auth::new_secret();
    write_private(&path, &token)?;
    tracing::warn!(
        path = %path.display(),
        "no admin token configured: generated one and wrote it to this file (mode 0600)"
    );
    Ok(token.into())
}

fn read(path: &Path) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string(path)
        .with_context(|| format!("reading {}", path.display()))?
        .trim()
        .to_owned())
}

/// Removes a generated token file that no longer holds the server's token.
fn remove_if_stale(path: &Path, configured: &str) -> anyhow::Result<()> {
    if !path.exists() || read(path)? == configured {
        return Ok(());
    }
    std::fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
    tracing::warn!(
        path = %path.display(),
        "removed the generated admin token: the configured token replaces it, and the old one no longer works"
    );
    Ok(())
}

fn write_private(path: &Path, token: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    writeln!(f, "{token}")?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generated_once_with_private_mode_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::default();
        config.engine.data_dir = dir.path().to_path_buf();
        let first = resolve(&config).unwrap().expose_secret().to_owned();
        let mode = std::fs::metadata(dir.path().join(FILE_NAME))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(resolve(&config).unwrap().expose_secret(), first);
        let configured = ServerConfig {
            admin_token: Some("x".repeat(20).into()),
            ..config
        };
        assert_eq!(
            resolve(&configured).unwrap().expose_secret(),
            "x".repeat(20)
        );
        assert!(
            !dir.path().join(FILE_NAME).exists(),
            "the generated token was replaced, so its file is gone"
        );
    }

    #[test]
    fn a_configured_token_equal_to_the_file_keeps_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = ServerConfig::default();
        config.engine.data_dir = dir.path().to_path_buf();
        let generated = resolve(&config).unwrap();
        let configured = ServerConfig {
            admin_token: Some(generated.clone()),
            ..config
        };
        assert_eq!(
            resolve(&configured).unwrap().expose_secret(),
            generated.expose_secret()
        );
        assert!(dir.path().join(FILE_NAME).exists());
    }
}
