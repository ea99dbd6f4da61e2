//! OpenID Connect: sign-in through an OpenID Provider (the authorization code flow of
//! OpenID Connect Core 1.0 with PKCE, RFC 7636) and the verification of ID tokens that
//! others present (RFC 8693 token exchange, e.g. a CI job's token).
//!
//! [`OidcVerifier`] knows one issuer: its discovery document (Discovery 1.0 §4) and its
//! JWKS. It checks an ID token's signature, `iss`, `aud`, `exp`, `iat` and `nbf`.
//! [`OidcClient`] adds a registered client: [`OidcClient::begin`] makes the
//! authorization URL and the [`PendingLogin`] the caller keeps (signed or encrypted
//! cookie, session) until the provider redirects back, and [`OidcClient::finish`]
//! checks the returned `state`, redeems the code (`client_secret_basic`) and checks
//! the ID token, its `azp` and `nonce` too (Core §3.1.3.7).
//!
//! Inputs are plain values: no routes, configuration structs or storage. Time
//! (`now_unix`) and randomness are parameters so tests control them. The
//! `reqwest::Client` comes from the caller, who sets its timeouts; it should not follow
//! redirects (a redirected token request would carry the code elsewhere).
//!
//! Keys are fetched from `jwks_uri` on first use and cached for up to
//! [`JWKS_MAX_AGE_SECS`]. A token naming an unknown `kid` (the provider rotated its
//! key) makes one refetch, at most once per [`JWKS_REFETCH_INTERVAL_SECS`], so tokens
//! with made-up `kid`s cannot make us fetch the JWKS for every request. Algorithms are
//! an allow-list of asymmetric ones that must fit the key's type: never `none`, never
//! HMAC (a public key used as an HMAC secret would let anyone sign).
//!
//! Errors say what the caller does: [`OidcError::Unreachable`] (network, 5xx: an
//! outage, 503), [`OidcError::Provider`] (the provider answered with an OAuth error
//! code such as `access_denied` or `invalid_grant`), [`OidcError::Invalid`] (a token,
//! state or response that must be refused). Messages never contain tokens, codes or
//! secrets, and nothing here logs them.
//!
//! Why not the `openidconnect` crate: version 4.1 depends on `oauth2` 5, whose
//! built-in reqwest support is reqwest 0.12 (the tree has 0.13; another client can be
//! plugged in through a trait, but the rest stays), rand 0.8 (the tree has 0.9),
//! chrono, and RustCrypto's `rsa`, `p256`, `p384` and `ed25519-dalek` beside the
//! aws-lc-rs the tree verifies signatures with. We need only the code flow and the ID
//! token checks: this module, on reqwest and jsonwebtoken, both already in the tree.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use rand::RngCore;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::str::FromStr;
use std::sync::{Mutex, MutexGuard};
use subtle::ConstantTimeEq;
use url::{Host, Url};

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
pub const LEEWAY_SECS: i64 = 30;
/// A JWKS refetch for an unknown `kid` happens at most this often.
pub const JWKS_REFETCH_INTERVAL_SECS: i64 = 60;
/// Cached keys are refreshed when older: a key the provider withdrew (rotated out,
/// compromised) is not trusted for longer, even if no token names an unknown `kid`.
pub const JWKS_MAX_AGE_SECS: i64 = 3600;
/// The scopes asked for: the identity, its email address and its profile.
pub const SCOPES: &str = "openid email profile";
/// Larger discovery documents, JWKS and token responses are refused.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Random bytes in `state`, `nonce` and the PKCE verifier (RFC 7636 §4.1 asks for 32,
/// which make a 43-character verifier).
pub(crate) const RANDOM_BYTES: usize = 32;

/// Asymmetric JWS algorithms (RFC 7518) accepted for ID tokens.
const ALLOWED_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or failed (network, timeout, 5xx).
    #[error("OpenID Provider unreachable: {0}")]
    Unreachable(String),
    /// The provider answered with an OAuth error code (`access_denied`,
    /// `invalid_grant`, ...): the code alone, never its free-text description.
    #[error("OpenID Provider refused: {0}")]
    Provider(String),
    /// Something to refuse: a bad token, state or nonce, a malformed response, a
    /// discovery document that does not fit the issuer.
    #[error("OpenID Connect: {0}")]
    Invalid(String),
}

pub(crate) fn invalid(message: impl Into<String>) -> OidcError {
    OidcError::Invalid(message.into())
}

/// What the caller keeps between [`OidcClient::begin`] and [`OidcClient::finish`]. It
/// holds the PKCE verifier: store it where the browser cannot read or change it (an
/// encrypted cookie, the server-side session).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
    pub redirect_uri: String,
}

impl std::fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLogin")
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// Who signed in, from a verified ID token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedIdentity {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    /// `false` when absent: an unverified address must not be matched to an account.
    pub email_verified: bool,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
    /// Every claim of the ID token.
    pub claims: Value,
}

/// The parts of a discovery document (Discovery 1.0 §3) used here.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: String,
}

#[derive(Default)]
struct JwksCache {
    /// `None` until a fetch succeeded.
    keys: Option<Vec<Jwk>>,
    /// `now_unix` of the last fetch (or refetch attempt).
    fetched_at: i64,
}

/// Verifies ID tokens of one issuer.
pub struct OidcVerifier {
    http: reqwest::Client,
    issuer: String,
    jwks_uri: Url,
    jwks: Mutex<JwksCache>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.issuer)
            .field("jwks_uri", &self.jwks_uri.as_str())
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    /// Fetches `<issuer>/.well-known/openid-configuration` (see [`OidcClient::discover`]
    /// for the checks).
    pub async fn discover(http: reqwest::Client, issuer: &str) -> Result<Self, OidcError> {
        let (metadata, local) = fetch_metadata(&http, issuer).await?;
        Self::from_metadata(http, &metadata, local)
    }

    fn from_metadata(
        http: reqwest::Client,
        metadata: &Metadata,
        local: bool,
    ) -> Result<Self, OidcError> {
        Ok(Self {
            jwks_uri: endpoint("jwks_uri", &metadata.jwks_uri, local)?,
            http,
            issuer: metadata.issuer.clone(),
            jwks: Mutex::default(),
        })
    }

    /// The issuer, exactly as configured (and as the discovery document states it).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verifies `token` for RFC 8693 token exchange: the signature by a key of the
    /// issuer's JWKS, `iss`, `audience` among `aud`, `exp`, `iat` and `nbf` against
    /// `now_unix` (with [`LEEWAY_SECS`]), a `sub`. No nonce: nobody asked for this
    /// token. Returns every claim.
    pub async fn verify_id_token(
        &self,
        token: &str,
        audience: &str,
        now_unix: i64,
    ) -> Result<Value, OidcError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid("the token is not a JWS with a known algorithm"))?;
        if !ALLOWED_ALGORITHMS.contains(&header.alg) {
            return Err(invalid(format!(
                "token algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = self.key_for(&header, now_unix).await?;
        let mut validation = Validation::new(header.alg);
        // Time and audience are checked below against `now_unix`; jsonwebtoken would
        // read the system clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
            .map_err(|e| invalid(format!("token signature or encoding refused ({e})")))?
            .claims;
        check_claims(&claims, &self.issuer, audience, now_unix)?;
        Ok(claims)
    }

    /// The key `header` names: from the cache while it is younger than
    /// [`JWKS_MAX_AGE_SECS`]; else from a fetch (rate-limited when the `kid` is
    /// unknown). A stale cache whose refresh finds the provider unreachable is used
    /// still: an outage of the provider should not end sign-ins by tokens it issued.
    async fn key_for(&self, header: &Header, now_unix: i64) -> Result<DecodingKey, OidcError> {
        let unknown = || invalid("token signed by a key the provider does not publish");
        let fallback = {
            let mut cache = lock(&self.jwks);
            // Negative when the clock went back: counts as old.
            let age = now_unix - cache.fetched_at;
            let cached = match &cache.keys {
                Some(keys) => select_key(keys, header)?,
                None => None,
            };
            let fallback = match cached {
                Some(key) if (0..JWKS_MAX_AGE_SECS).contains(&age) => return Ok(key),
                Some(key) => Some(key),
                None if cache.keys.is_some() && (0..JWKS_REFETCH_INTERVAL_SECS).contains(&age) => {
                    return Err(unknown());
                }
                None => None,
            };
            // Claimed before the fetch, so concurrent requests do not all fetch.
            cache.fetched_at = now_unix;
            fallback
        };
        let keys = match (self.fetch_jwks().await, fallback) {
            (Ok(keys), _) => keys,
            (Err(OidcError::Unreachable(reason)), Some(key)) => {
                tracing::warn!(
                    issuer = %self.issuer,
                    %reason,
                    "JWKS refresh failed; using the cached keys"
                );
                return Ok(key);
            }
            (Err(e), _) => return Err(e),
        };
        let selected = select_key(&keys, header);
        lock(&self.jwks).keys = Some(keys);
        selected?.ok_or_else(unknown)
    }

    async fn fetch_jwks(&self) -> Result<Vec<Jwk>, OidcError> {
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<Value>,
        }
        let set: RawSet = get_json(&self.http, self.jwks_uri.clone(), "JWKS").await?;
        // Keys one by one: a key of a type or algorithm jsonwebtoken does not know
        // (an encryption key, say) is skipped rather than spoiling the whole set.
        Ok(set
            .keys
            .into_iter()
            .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
            .collect())
    }
}

/// The key for `header` among `keys`: by `kid`; without a `kid`, the one key that fits
/// the algorithm (Core §10.1 requires a `kid` when there are several). `Ok(None)`: not
/// there (a refetch may help).
fn select_key(keys: &[Jwk], header: &Header) -> Result<Option<DecodingKey>, OidcError> {
    let signing = keys
        .iter()
        .filter(|k| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption)));
    let candidates: Vec<&Jwk> = match &header.kid {
        Some(kid) => signing
            .filter(|k| k.common.key_id.as_deref() == Some(kid.as_str()))
            .collect(),
        None => signing.filter(|k| key_fits(k, header.alg)).collect(),
    };
    let jwk = match candidates[..] {
        [] => return Ok(None),
        [one] => one,
        _ => return Err(invalid("the token's key is ambiguous in the JWKS")),
    };
    if !key_fits(jwk, header.alg) {
        return Err(invalid("the token's algorithm does not fit its key"));
    }
    DecodingKey::from_jwk(jwk)
        .map(Some)
        .map_err(|_| invalid("the JWKS key is unusable"))
}

/// Whether `alg` is the key's: its stated `alg` if any, and its type and curve.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    if let Some(stated) = jwk.common.key_algorithm
        && Algorithm::from_str(&stated.to_string()).ok() != Some(alg)
    {
        return false;
    }
    use Algorithm::*;
    match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), RS256 | RS384 | RS512 | PS256 | PS384 | PS512) => true,
        (AlgorithmParameters::EllipticCurve(p), ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::EllipticCurve(p), ES384) => p.curve == EllipticCurve::P384,
        (AlgorithmParameters::OctetKeyPair(p), EdDSA) => p.curve == EllipticCurve::Ed25519,
        // Symmetric (`oct`) keys never: a JWKS is public.
        _ => false,
    }
}

/// A NumericDate claim (RFC 7519 §2: seconds, possibly fractional).
fn numeric_date(claims: &Value, name: &str) -> Option<i64> {
    let value = claims.get(name)?;
    value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
}

/// The claim checks common to both uses (Core §3.1.3.7 items 2, 3, 9, 10).
fn check_claims(
    claims: &Value,
    issuer: &str,
    audience: &str,
    now_unix: i64,
) -> Result<(), OidcError> {
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(invalid("token issuer (iss) is not the configured issuer"));
    }
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return Err(invalid("token has no subject (sub)"));
    }
    if !audiences(claims).contains(&audience) {
        return Err(invalid("token audience (aud) does not include us"));
    }
    let Some(exp) = numeric_date(claims, "exp") else {
        return Err(invalid("token has no expiry (exp)"));
    };
    if now_unix >= exp.saturating_add(LEEWAY_SECS) {
        return Err(invalid("token expired (exp)"));
    }
    let Some(iat) = numeric_date(claims, "iat") else {
        return Err(invalid("token has no issue time (iat)"));
    };
    if iat > now_unix.saturating_add(LEEWAY_SECS) {
        return Err(invalid("token issued in the future (iat)"));
    }
    if let Some(nbf) = numeric_date(claims, "nbf")
        && nbf > now_unix.saturating_add(LEEWAY_SECS)
    {
        return Err(invalid("token not valid yet (nbf)"));
    }
    Ok(())
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
fn audiences(claims: &Value) -> Vec<&str> {
    match claims.get("aud") {
        Some(Value::String(one)) => vec![one.as_str()],
        Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A registered client of one OpenID Provider.
pub struct OidcClient {
    verifier: OidcVerifier,
    client_id: String,
    client_secret: Option<String>,
    authorization_endpoint: Url,
    token_endpoint: Url,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.verifier.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "..."))
            .finish_non_exhaustive()
    }
}

impl OidcClient {
    /// Fetches `<issuer>/.well-known/openid-configuration` (a trailing `/` of `issuer`
    /// dropped first, Discovery §4.1). The document's `issuer` must equal `issuer`
    /// exactly (§4.3); the issuer and every endpoint must be https, except that an
    /// `http://` issuer on a loopback host (`127.0.0.1`, `::1`, `localhost`: tests, a
    /// provider on the same machine) may have http endpoints on loopback hosts.
    /// `client_secret`: `None` for a public client (PKCE alone).
    pub async fn discover(
        http: reqwest::Client,
        issuer: &str,
        client_id: impl Into<String>,
        client_secret: Option<String>,
    ) -> Result<Self, OidcError> {
        let (metadata, local) = fetch_metadata(&http, issuer).await?;
        let required = |name: &'static str, value: &Option<String>| {
            let value = value
                .as_deref()
                .ok_or_else(|| invalid(format!("the discovery document has no {name}")))?;
            endpoint(name, value, local)
        };
        let authorization_endpoint =
            required("authorization_endpoint", &metadata.authorization_endpoint)?;
        let token_endpoint = required("token_endpoint", &metadata.token_endpoint)?;
        Ok(Self {
            verifier: OidcVerifier::from_metadata(http, &metadata, local)?,
            client_id: client_id.into(),
            client_secret,
            authorization_endpoint,
            token_endpoint,
        })
    }

    /// The ID token verifier of the client's issuer.
    pub fn verifier(&self) -> &OidcVerifier {
        &self.verifier
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The authorization URL to send the browser to, and what to keep until it comes
    /// back to `redirect_uri`: fresh `state` and `nonce` and a PKCE verifier (S256),
    /// 32 bytes of `random` each.
    pub fn begin(&self, redirect_uri: &str, random: &mut impl RngCore) -> (String, PendingLogin) {
        let mut draw = || {
            let mut bytes = [0u8; RANDOM_BYTES];
            random.fill_bytes(&mut bytes);
            URL_SAFE_NO_PAD.encode(bytes)
        };
        let pending = PendingLogin {
            state: draw(),
            nonce: draw(),
            code_verifier: draw(),
            redirect_uri: redirect_uri.to_owned(),
        };
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.code_verifier.as_bytes()));
        let mut url = self.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", SCOPES)
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        (url.into(), pending)
    }

    /// The error for a redirect back with `error=...` instead of a code: a wrong
    /// `state` is [`OidcError::Invalid`] (anyone can send a browser to the redirect
    /// URI), else [`OidcError::Provider`] with the error code.
    pub fn callback_error(
        &self,
        pending: &PendingLogin,
        returned_state: &str,
        error: &str,
    ) -> OidcError {
        callback_error(pending, returned_state, error)
    }

    /// Completes a sign-in: `returned_state` must be `pending.state` (compared in
    /// constant time); `code` is redeemed at the token endpoint with the PKCE verifier;
    /// the ID token must pass [`OidcVerifier::verify_id_token`] for our client id, name
    /// us in `azp` when it has several audiences (or any `azp`), and carry
    /// `pending.nonce`.
    pub async fn finish(
        &self,
        pending: &PendingLogin,
        returned_state: &str,
        code: &str,
        now_unix: i64,
    ) -> Result<VerifiedIdentity, OidcError> {
        check_state(pending, returned_state)?;
        let id_token = self.redeem(pending, code).await?;
        let claims = self
            .verifier
            .verify_id_token(&id_token, &self.client_id, now_unix)
            .await?;
        let azp = claims.get("azp").and_then(Value::as_str);
        if azp.is_some_and(|azp| azp != self.client_id)
            || (azp.is_none() && audiences(&claims).len() > 1)
        {
            return Err(invalid("ID token authorized party (azp) is not us"));
        }
        let nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if pending.nonce.is_empty() || !bool::from(nonce.as_bytes().ct_eq(pending.nonce.as_bytes()))
        {
            return Err(invalid("ID token nonce does not match the sign-in"));
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        // Some providers send the boolean as a string.
        let email_verified = match claims.get("email_verified") {
            Some(Value::Bool(verified)) => *verified,
            Some(Value::String(verified)) => verified == "true",
            _ => false,
        };
        Ok(VerifiedIdentity {
            issuer: self.verifier.issuer.clone(),
            subject: text("sub").unwrap_or_default(),
            email: text("email"),
            email_verified,
            preferred_username: text("preferred_username"),
            name: text("name"),
            claims,
        })
    }

    /// RFC 8693 token exchange: see [`OidcVerifier::verify_id_token`].
    pub async fn verify_id_token(
        &self,
        token: &str,
        audience: &str,
        now_unix: i64,
    ) -> Result<Value, OidcError> {
        self.verifier
            .verify_id_token(token, audience, now_unix)
            .await
    }

    /// The token request (Core §3.1.3.1); returns the ID token.
    async fn redeem(&self, pending: &PendingLogin, code: &str) -> Result<String, OidcError> {
        // Built in a block: the serializer is not `Send` and must not live across an
        // await (a web handler's future must be `Send`).
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "authorization_code")
                .append_pair("code", code)
                .append_pair("redirect_uri", &pending.redirect_uri)
                .append_pair("code_verifier", &pending.code_verifier);
            if self.client_secret.is_none() {
                // A public client names itself in the form (RFC 6749 §2.3.1).
                form.append_pair("client_id", &self.client_id);
            }
            form.finish()
        };
        let basic = self
            .client_secret
            .as_deref()
            .map(|secret| (self.client_id.as_str(), secret));
        let (status, body) =
            post_token_form(&self.verifier.http, &self.token_endpoint, body, basic).await?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct ErrorResponse {
                error: String,
            }
            let code = serde_json::from_slice::<ErrorResponse>(&body)
                .map(|e| error_code(&e.error))
                .unwrap_or_else(|_| format!("HTTP {}", status.as_u16()));
            return Err(OidcError::Provider(code));
        }
        #[derive(Deserialize)]
        struct TokenResponse {
            // The access token is not read: the ID token is all sign-in needs, and what
            // is not parsed cannot leak.
            token_type: Option<String>,
            id_token: Option<String>,
        }
        // No serde detail in the message: it could quote the response.
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|_| invalid("the token response is not the expected JSON"))?;
        if !parsed
            .token_type
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
        {
            return Err(invalid("the token response's token_type is not Bearer"));
        }
        parsed
            .id_token
            .ok_or_else(|| invalid("the token response has no id_token"))
    }
}

/// The error for a redirect back with `error=...`: a wrong `state` is
/// [`OidcError::Invalid`], else [`OidcError::Provider`] with the (cleaned) code. Shared
/// by the OpenID Connect and the plain OAuth clients.
pub(crate) fn callback_error(
    pending: &PendingLogin,
    returned_state: &str,
    error: &str,
) -> OidcError {
    match check_state(pending, returned_state) {
        Err(e) => e,
        Ok(()) => OidcError::Provider(error_code(error)),
    }
}

pub(crate) fn check_state(pending: &PendingLogin, returned_state: &str) -> Result<(), OidcError> {
    let matches: bool = pending
        .state
        .as_bytes()
        .ct_eq(returned_state.as_bytes())
        .into();
    if pending.state.is_empty() || !matches {
        return Err(invalid("the returned state is not the sign-in's"));
    }
    Ok(())
}

/// An OAuth error code as the provider sent it, if it is one (RFC 6749 §5.2: printable
/// ASCII without `"` and `\`), else a placeholder: it ends up in logs and pages.
pub(crate) fn error_code(error: &str) -> String {
    let printable = |b: u8| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\';
    if !error.is_empty() && error.len() <= 64 && error.bytes().all(printable) {
        error.to_owned()
    } else {
        "unrecognized_error".to_owned()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The cache is replaced whole, so a panic elsewhere cannot leave it half-written.
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The discovery document of `issuer`, checked, and whether the issuer is a loopback
/// http one (whose endpoints may be http too).
async fn fetch_metadata(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<(Metadata, bool), OidcError> {
    let parsed =
        Url::parse(issuer).map_err(|_| invalid(format!("issuer {issuer:?} is not a URL")))?;
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid(format!(
            "issuer {issuer:?} must not have a query or fragment"
        )));
    }
    let local = parsed.scheme() == "http" && is_loopback(&parsed);
    if parsed.scheme() != "https" && !local {
        return Err(invalid(format!(
            "issuer {issuer:?} must be https (http only on a loopback host)"
        )));
    }
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let url = Url::parse(&url).map_err(|_| invalid("discovery URL is not a URL"))?;
    let metadata: Metadata = get_json(http, url, "discovery document").await?;
    if metadata.issuer != issuer {
        return Err(invalid(format!(
            "the discovery document names issuer {:?}, not {issuer:?}",
            metadata.issuer
        )));
    }
    Ok((metadata, local))
}

/// `value` as an endpoint URL: https, or http on a loopback host for a `local` issuer.
fn endpoint(name: &str, value: &str, local: bool) -> Result<Url, OidcError> {
    let url = Url::parse(value).map_err(|_| invalid(format!("{name} is not a URL")))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if local && is_loopback(&url) => Ok(url),
        _ => Err(invalid(format!("{name} {value:?} must be https"))),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

pub(crate) fn unreachable(what: &str, error: &reqwest::Error) -> OidcError {
    // The error and its causes on one line (a refused connection says so only in a
    // source). URLs here carry no secrets: the token request's are in its body.
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    OidcError::Unreachable(format!("{what}: {text}"))
}

/// POSTs the form `body` to a token endpoint (RFC 6749 §4.1.3), with
/// `client_secret_basic` when `basic` names the client id and secret: the answer's
/// status and body (size-limited). A 5xx or no connection is `Unreachable`. Shared by the
/// OpenID Connect and the plain OAuth clients.
pub(crate) async fn post_token_form(
    http: &reqwest::Client,
    endpoint: &Url,
    body: String,
    basic: Option<(&str, &str)>,
) -> Result<(reqwest::StatusCode, Vec<u8>), OidcError> {
    let mut request = http
        .post(endpoint.clone())
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some((client_id, secret)) = basic {
        // RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
        let encode =
            |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let credentials = STANDARD.encode(format!("{}:{}", encode(client_id), encode(secret)));
        let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
            .map_err(|_| invalid("client credentials unusable in a header"))?;
        // Keeps the value out of reqwest's and hyper's debug output.
        value.set_sensitive(true);
        request = request.header(AUTHORIZATION, value);
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| unreachable("token endpoint", &e))?;
    let status = response.status();
    if status.is_server_error() {
        return Err(OidcError::Unreachable(format!(
            "token endpoint: HTTP {status}"
        )));
    }
    Ok((status, read_limited(response, "token endpoint").await?))
}

pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    what: &str,
) -> Result<Vec<u8>, OidcError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(what, &e))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(invalid(format!(
                "{what}: response larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// GET of a public JSON document (discovery, JWKS): 5xx and network failures are
/// [`OidcError::Unreachable`], anything else unexpected [`OidcError::Invalid`].
async fn get_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: Url,
    what: &str,
) -> Result<T, OidcError> {
    let response = http
        .get(url)
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| unreachable(what, &e))?;
    let status = response.status();
    if status.is_server_error() {
        return Err(OidcError::Unreachable(format!("{what}: HTTP {status}")));
    }
    if !status.is_success() {
        return Err(invalid(format!("{what}: HTTP {status}")));
    }
    let body = read_limited(response, what).await?;
    serde_json::from_slice(&body)
        .map_err(|e| invalid(format!("{what}: not the expected JSON ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn endpoints_must_be_https_except_on_loopback_for_a_loopback_issuer() {
        let cases = [
            ("https://op.example/token", false, true),
            ("https://op.example/token", true, true),
            ("http://op.example/token", false, false),
            ("http://op.example/token", true, false),
            ("http://127.0.0.1:8080/token", false, false),
            ("http://127.0.0.1:8080/token", true, true),
            ("http://localhost/token", true, true),
            ("http://[::1]:9/token", true, true),
            ("ftp://127.0.0.1/token", true, false),
            ("not a url", true, false),
        ];
        for (value, local, ok) in cases {
            assert_eq!(
                endpoint("token_endpoint", value, local).is_ok(),
                ok,
                "{value} {local}"
            );
        }
    }

    #[test]
    fn claims_are_checked_against_the_given_time() {
        let now = 1_700_000_000;
        let good = json!({
            "iss": "https://op", "sub": "s", "aud": ["x", "portcullis"], "exp": now + 60, "iat": now,
        });
        assert!(check_claims(&good, "https://op", "portcullis", now).is_ok());
        let with = |name: &str, value: Value| {
            let mut c = good.clone();
            c[name] = value;
            c
        };
        let without = |name: &str| {
            let mut c = good.clone();
            c.as_object_mut().unwrap().remove(name);
            c
        };
        let refused = [
            (with("iss", json!("https://op/")), "iss"),
            (with("aud", json!("other")), "aud"),
            (with("aud", json!(["other"])), "aud"),
            (without("aud"), "aud"),
            (without("sub"), "sub"),
            (with("sub", json!("")), "sub"),
            (with("exp", json!(now - LEEWAY_SECS)), "exp"),
            (without("exp"), "exp"),
            (with("iat", json!(now + LEEWAY_SECS + 1)), "iat"),
            (without("iat"), "iat"),
            (with("nbf", json!(now + LEEWAY_SECS + 1)), "nbf"),
        ];
        for (claims, what) in refused {
            match check_claims(&claims, "https://op", "portcullis", now) {
                Err(OidcError::Invalid(m)) => assert!(m.contains(what), "{what}: {m}"),
                other => panic!("{what}: {other:?}"),
            }
        }
        // Within the leeway.
        let late = with("exp", json!(now - LEEWAY_SECS + 1));
        assert!(check_claims(&late, "https://op", "portcullis", now).is_ok());
        let fractional = with("exp", json!(now as f64 + 10.5));
        assert!(check_claims(&fractional, "https://op", "portcullis", now).is_ok());
    }

    #[test]
    fn error_codes_are_kept_only_when_they_are_codes() {
        assert_eq!(error_code("access_denied"), "access_denied");
        assert_eq!(error_code(""), "unrecognized_error");
        assert_eq!(error_code("bad\"quote"), "unrecognized_error");
        assert_eq!(error_code(&"x".repeat(65)), "unrecognized_error");
        assert_eq!(error_code("new\nline"), "unrecognized_error");
    }

    #[test]
    fn an_hmac_key_or_a_mismatched_algorithm_never_fits() {
        let oct: Jwk =
            serde_json::from_value(json!({"kty": "oct", "k": "c2VjcmV0", "kid": "h"})).unwrap();
        assert!(!key_fits(&oct, Algorithm::RS256));
        let rsa: Jwk =
            serde_json::from_value(json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "RS256"}))
                .unwrap();
        assert!(key_fits(&rsa, Algorithm::RS256));
        assert!(!key_fits(&rsa, Algorithm::RS512), "the stated alg");
        assert!(!key_fits(&rsa, Algorithm::ES256));
        let ec: Jwk =
            serde_json::from_value(json!({"kty": "EC", "crv": "P-256", "x": "AQAB", "y": "AQAB"}))
                .unwrap();
        assert!(key_fits(&ec, Algorithm::ES256));
        assert!(!key_fits(&ec, Algorithm::ES384));
    }
}
