//! `orthanc-edge token`: a session token, or a signed preview link, minted from the command line
//! with the config's `auth.jwt.secret`, so that trying the browser path needs no PyJWT or curl.
//! The same minter and the same checks as `POST /auth/session` and `POST /auth/sign`.

use anyhow::{anyhow, bail, Context};
use serde_json::json;

use super::mint::{Minter, SessionRequest, SignRequest};
use crate::config::Config;

/// What to mint.
#[derive(Debug, Clone, Default)]
pub struct TokenArgs {
    /// The end user the token names (`sub`).
    pub sub: String,
    pub studies: Vec<String>,
    pub series: Vec<String>,
    pub instances: Vec<String>,
    /// `90`, `90s`, `30m`, `1h`, `1d`; the config's default lifetime when `None`.
    pub lifetime: Option<String>,
    /// A signed link to this instance's preview instead of a session token.
    pub link: Option<String>,
}

/// Seconds in `90`, `90s`, `30m`, `1h`, `1d`.
pub fn parse_lifetime(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: u64 = digits.parse().map_err(|_| anyhow!("lifetime {s:?}: a number then s, m, h or d"))?;
    let per = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("lifetime {s:?}: the unit is s, m, h or d"),
    };
    n.checked_mul(per).filter(|&v| v > 0).ok_or_else(|| anyhow!("lifetime {s:?} is out of range"))
}

/// The token (or the link's URL), as a line to print.
pub fn mint(cfg: &Config, args: &TokenArgs) -> anyhow::Result<String> {
    let secret = cfg.jwt_secret()?.context("minting needs auth.jwt.secret (or secret_file) in the config")?;
    let minter = Minter::new(&secret, &cfg.auth.jwt, &cfg.auth.sign);
    let lifetime_s = args.lifetime.as_deref().map(parse_lifetime).transpose()?;
    if let Some(instance) = &args.link {
        if !(args.studies.is_empty() && args.series.is_empty() && args.instances.is_empty()) {
            bail!("--link makes a link scoped to its instance: no --study, --series or --instance with it");
        }
        let req: SignRequest = serde_json::from_value(
            json!({"instances": [instance], "lifetime_s": lifetime_s, "sub": args.sub}),
        )?;
        let signed = minter.sign(&args.sub, &req)?;
        return signed.urls().next().map(str::to_owned).context("no link minted");
    }
    let mut body = json!({"sub": args.sub, "lifetime_s": lifetime_s});
    // Lists given only when not empty: no list at all is an unrestricted session.
    for (field, ids) in [("studies", &args.studies), ("series", &args.series), ("instances", &args.instances)]
    {
        if !ids.is_empty() {
            body[field] = json!(ids);
        }
    }
    let req: SessionRequest = serde_json::from_value(body)?;
    Ok(minter.session(&args.sub, &req)?.token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes() {
        assert_eq!(parse_lifetime("90").unwrap(), 90);
        assert_eq!(parse_lifetime("90s").unwrap(), 90);
        assert_eq!(parse_lifetime("30m").unwrap(), 1800);
        assert_eq!(parse_lifetime("1h").unwrap(), 3600);
        assert_eq!(parse_lifetime("2d").unwrap(), 172_800);
        for bad in ["", "h", "1y", "0", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
