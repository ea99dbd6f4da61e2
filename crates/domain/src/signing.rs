//! How tokens are signed, as far as configuration names it: the JWS algorithm
//! (`token.algorithm`) and how the `kid` header is computed (`token.kid`). The keys and
//! the cryptography are in `portcullis-registry`, which re-exports these types from its
//! `keys` module.
//!
//! Both parse case-insensitively (`es256`, `LibTrust`) and serialize in their canonical
//! spelling (`ES256`, `libtrust`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// JWS signing algorithm. Only what distribution 2.8 and 3.x both verify and what Portus used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// ECDSA P-256 with SHA-256 (the default for generated keys).
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (imported Portus keys).
    Rs256,
}

impl Algorithm {
    /// What a bad value is told it should have been.
    pub const EXPECTED: &'static str = "expected ES256 or RS256";

    /// Parses `ES256` / `RS256`, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("ES256") {
            Some(Self::Es256)
        } else if s.eq_ignore_ascii_case("RS256") {
            Some(Self::Rs256)
        } else {
            None
        }
    }

    /// The JOSE `alg` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Algorithm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(Self::EXPECTED))
    }
}

/// How the JOSE `kid` header is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KidFormat {
    /// libtrust key ID: what distribution 2.8 matches against its rootcertbundle (and Portus sent).
    Libtrust,
    /// RFC 7638 JWK thumbprint: what distribution 3.x indexes its keys by.
    Rfc7638,
}

impl KidFormat {
    /// What a bad value is told it should have been.
    pub const EXPECTED: &'static str = "expected libtrust or rfc7638";

    /// Parses `libtrust` / `rfc7638`, case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("libtrust") {
            Some(Self::Libtrust)
        } else if s.eq_ignore_ascii_case("rfc7638") {
            Some(Self::Rfc7638)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Libtrust => "libtrust",
            Self::Rfc7638 => "rfc7638",
        }
    }
}

impl fmt::Display for KidFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for KidFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for KidFormat {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom(Self::EXPECTED))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::IntoDeserializer;
    use serde::de::value::Error as DeError;

    fn from_str<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, String> {
        T::deserialize(IntoDeserializer::<DeError>::into_deserializer(s)).map_err(|e| e.to_string())
    }

    #[test]
    fn parse_is_case_insensitive() {
        assert_eq!(Algorithm::parse("es256"), Some(Algorithm::Es256));
        assert_eq!(Algorithm::parse("RS256"), Some(Algorithm::Rs256));
        assert_eq!(Algorithm::parse("PS256"), None);
        assert_eq!(Algorithm::parse(""), None);
        assert_eq!(KidFormat::parse("LibTrust"), Some(KidFormat::Libtrust));
        assert_eq!(KidFormat::parse("rfc7638"), Some(KidFormat::Rfc7638));
        assert_eq!(KidFormat::parse("jwk"), None);
    }

    #[test]
    fn serde_round_trips_the_canonical_spelling() {
        assert_eq!(from_str::<Algorithm>("rs256"), Ok(Algorithm::Rs256));
        assert_eq!(
            from_str::<Algorithm>("HS256"),
            Err("expected ES256 or RS256".into())
        );
        assert_eq!(from_str::<KidFormat>("RFC7638"), Ok(KidFormat::Rfc7638));
        assert_eq!(
            from_str::<KidFormat>("random"),
            Err("expected libtrust or rfc7638".into())
        );
        for alg in [Algorithm::Es256, Algorithm::Rs256] {
            assert_eq!(alg.to_string(), alg.as_str());
            assert_eq!(from_str::<Algorithm>(alg.as_str()), Ok(alg));
        }
        for kid in [KidFormat::Libtrust, KidFormat::Rfc7638] {
            assert_eq!(kid.to_string(), kid.as_str());
            assert_eq!(from_str::<KidFormat>(kid.as_str()), Ok(kid));
        }
    }
}
