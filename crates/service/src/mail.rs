//! Mail (Portus's `email.*`): the password reset mail, sent by the worker.
//!
//! Nothing is sent on a request path. "Forgot your password?" queues one job holding
//! the address (sealed), whatever the address: the request costs the same whether an
//! account has it or not, and the answer is the same. The worker's job looks the
//! account up and, for an account that may reset its password, issues the token and
//! queues the mail as a second job, which is retried while the server answers with
//! temporary failures; a retry sends the same mail, never a new token. Job payloads
//! are sealed (AES-GCM, the key of the webhook secrets) because the mail carries the
//! token.
//!
//! SMTP and sendmail are lettre's: it speaks the protocol, STARTTLS and implicit TLS
//! (through rustls, as everything else here), and runs the sendmail program.

use crate::background::{JobOutcome, kinds};
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSendmailTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use portcullis_config::{Email, SmtpAuthentication, SmtpImplicitTls, SmtpVerifyMode};
use portcullis_domain::inventory::NewJob;
use portcullis_domain::{Error, Result};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of a mail before it is parked as failed (with the queue's backoff, about
/// a day of trying).
const MAIL_ATTEMPTS: i64 = 12;
/// Reset requests one client address may make a minute.
pub(crate) const RESET_REQUESTS_PER_MINUTE: i64 = 5;
/// A second reset mail for the same account within this time is not sent: a form
/// submitted in a loop must not fill a mailbox.
const RESET_MAIL_INTERVAL_SECS: i64 = 120;

/// The associated data of the sealed payloads, so one kind cannot be replayed as
/// the other.
const RESET_REQUEST_AAD: &[u8] = b"job:password_reset_request";
const MAIL_AAD: &[u8] = b"job:send_mail";

/// One plain-text mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutgoingMail {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// Why a mail did not leave.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// Worth another try: the server unreachable or a 4xx answer.
    #[error("{0}")]
    Temporary(String),
    /// Cannot succeed as it is: a 5xx answer, an address that does not parse.
    #[error("{0}")]
    Permanent(String),
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Sendmail(AsyncSendmailTransport<Tokio1Executor>),
}

/// Sends mail the way `email.*` says.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    reply_to: Option<Mailbox>,
    /// Where mail goes, for logs.
    target: String,
}

impl Mailer {
    /// A mailer for `email` (checked by the configuration loader). An unreadable CA
    /// file is an error naming the key.
    pub fn new(email: &Email) -> std::result::Result<Self, String> {
        let address = |key: &str, v: &str| {
            v.parse()
                .map_err(|e| format!("email.{key} {v:?}: not an email address ({e})"))
        };
        let name = (!email.name.is_empty()).then(|| email.name.clone());
        let from = Mailbox::new(name, address("from", &email.from)?);
        let reply_to = match email.reply_to.as_str() {
            "" => None,
            v => Some(Mailbox::new(None, address("reply_to", v)?)),
        };
        let s = &email.smtp;
        let (transport, target) = if s.enabled {
            let tls = || tls_parameters(email);
            let tls = match (s.ssl_tls, s.enable_starttls_auto) {
                (SmtpImplicitTls::Ssl | SmtpImplicitTls::Tls, _) => Tls::Wrapper(tls()?),
                // With credentials STARTTLS is required: a server (or a man in the
                // middle) that does not offer it gets no password.
                (SmtpImplicitTls::None, true) if !s.user_name.is_empty() => Tls::Required(tls()?),
                (SmtpImplicitTls::None, true) => Tls::Opportunistic(tls()?),
                (SmtpImplicitTls::None, false) => Tls::None,
            };
            let port = u16::try_from(s.port).map_err(|_| format!("email.smtp.port {}", s.port))?;
            let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.address)
                .port(port)
                .tls(tls)
                .timeout(Some(SMTP_TIMEOUT))
                .hello_name(ClientId::Domain(s.domain.clone()));
            if !s.user_name.is_empty() {
                let mechanism = match s.authentication {
                    SmtpAuthentication::Plain => Mechanism::Plain,
                    SmtpAuthentication::Login => Mechanism::Login,
                    SmtpAuthentication::CramMd5 => {
                        return Err("email.smtp.authentication cram_md5 is not offered".into());
                    }
                };
                builder = builder
                    .credentials(Credentials::new(s.user_name.clone(), s.password.clone()))
                    .authentication(vec![mechanism]);
            }
            (
                Transport::Smtp(builder.build()),
                format!("smtp://{}:{}", s.address, s.port),
            )
        } else {
            let program = &email.sendmail.location;
            (
                Transport::Sendmail(AsyncSendmailTransport::new_with_command(program)),
                format!("sendmail {program}"),
            )
        };
        Ok(Self {
            transport,
            from,
            reply_to,
            target,
        })
    }

    /// Where mail goes (`smtp://host:port` or `sendmail <program>`).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The message `mail` becomes, with the configured sender.
    pub fn message(&self, mail: &OutgoingMail) -> std::result::Result<Message, MailError> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| MailError::Permanent(format!("recipient {:?}: {e}", mail.to)))?;
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject.clone())
            .header(ContentType::TEXT_PLAIN);
        if let Some(reply_to) = &self.reply_to {
            builder = builder.reply_to(reply_to.clone());
        }
        builder
            .body(mail.text.clone())
            .map_err(|e| MailError::Permanent(format!("mail not built: {e}")))
    }

    pub async fn send(&self, mail: &OutgoingMail) -> std::result::Result<(), MailError> {
        let message = self.message(mail)?;
        match &self.transport {
            Transport::Smtp(smtp) => smtp.send(message).await.map(drop).map_err(|e| {
                let reason = format!("{}: {e}", self.target);
                if e.is_permanent() {
                    MailError::Permanent(reason)
                } else {
                    MailError::Temporary(reason)
                }
            }),
            Transport::Sendmail(sendmail) => sendmail
                .send(message)
                .await
                .map_err(|e| MailError::Temporary(format!("{}: {e}", self.target))),
        }
    }
}

/// The server's name checked against the system roots and `ca_file` / `ca_path`, or
/// nothing checked with `openssl_verify_mode: none` (Portus's default, warned about at
/// start).
fn tls_parameters(email: &Email) -> std::result::Result<TlsParameters, String> {
    let s = &email.smtp;
    let mut builder = TlsParameters::builder(s.address.clone());
    let mut files = Vec::new();
    if !s.ca_file.is_empty() {
        files.push(("email.smtp.ca_file", std::path::PathBuf::from(&s.ca_file)));
    }
    if !s.ca_path.is_empty() {
        let entries = std::fs::read_dir(&s.ca_path)
            .map_err(|e| format!("email.smtp.ca_path {:?}: {e}", s.ca_path))?;
        let mut found: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pem" || x == "crt"))
            .collect();
        found.sort();
        files.extend(found.into_iter().map(|p| ("email.smtp.ca_path", p)));
    }
    for (key, path) in files {
        let certs: Vec<CertificateDer> = CertificateDer::pem_file_iter(&path)
            .and_then(|certs| certs.collect())
            .map_err(|e| format!("{key} {}: no PEM certificates ({e})", path.display()))?;
        for der in certs {
            let cert = Certificate::from_der(der.to_vec())
                .map_err(|e| format!("{key} {}: {e}", path.display()))?;
            builder = builder.add_root_certificate(cert);
        }
    }
    if s.openssl_verify_mode == SmtpVerifyMode::None {
        builder = builder
            .dangerous_accept_invalid_certs(true)
            .dangerous_accept_invalid_hostnames(true);
    }
    builder
        .build_rustls()
        .map_err(|e| format!("email.smtp TLS settings: {e}"))
}

#[derive(Serialize, Deserialize)]
struct SealedPayload {
    sealed: String,
}

#[derive(Serialize, Deserialize)]
struct ResetRequest {
    email: String,
}

crate::service! {
    /// Password reset requests and the mail they send.
    MailService
}

impl MailService {
    /// "Forgot your password?": queues the lookup of `email` and returns, the same for
    /// every address (see the module documentation). `client` (the client's address)
    /// keys a rate limit. Refused when accounts come from LDAP (as Portus).
    pub async fn request_password_reset(&self, email: &str, client: &str) -> Result<()> {
        if self.ctx.auth.directory().is_some() {
            return Err(Error::Disabled(
                "Passwords belong to the LDAP directory: reset yours there".into(),
            ));
        }
        let email = email.trim();
        if email.is_empty() || email.len() > 254 || !email.contains('@') {
            return Err(Error::invalid("email", "is not an email address"));
        }
        if !self.ctx.reset_requests.try_acquire(client) {
            return Err(Error::RateLimited);
        }
        let payload = serde_json::to_vec(&ResetRequest {
            email: email.to_owned(),
        })
        .map_err(|e| Error::internal(e.to_string()))?;
        self.enqueue(
            kinds::PASSWORD_RESET_REQUEST,
            &payload,
            RESET_REQUEST_AAD,
            3,
        )
        .await
    }

    async fn enqueue(&self, kind: &str, payload: &[u8], aad: &[u8], attempts: i64) -> Result<()> {
        let sealed = self.ctx.webhooks.sealer().seal(payload, aad, |nonce| {
            self.ctx.random.fill(nonce);
        });
        let sealed = sealed.map_err(|e| Error::internal(format!("sealing a job: {e}")))?;
        let now = self.ctx.clock.now();
        let job = NewJob {
            kind: kind.into(),
            payload: serde_json::to_string(&SealedPayload { sealed })
                .map_err(|e| Error::internal(e.to_string()))?,
            singleton: None,
            max_attempts: attempts,
            run_at: now,
        };
        self.ctx.store.enqueue_job(&job, now).await?;
        self.ctx.wake_workers();
        Ok(())
    }

    fn open(&self, payload: &str, aad: &[u8]) -> std::result::Result<Vec<u8>, String> {
        let SealedPayload { sealed } =
            serde_json::from_str(payload).map_err(|e| format!("bad payload: {e}"))?;
        self.ctx
            .webhooks
            .sealer()
            .open(&sealed, aad)
            .map_err(|e| format!("cannot open the payload ({e}); was the webhook key replaced?"))
    }

    /// The worker's half of a reset request: for an account that may reset its
    /// password (not a bot, not disabled, not a directory user, no reset mail in the
    /// last two minutes), issue the token and queue the mail.
    pub async fn run_reset_request(&self, services: &crate::Services, payload: &str) -> JobOutcome {
        let request: ResetRequest = match self
            .open(payload, RESET_REQUEST_AAD)
            .and_then(|p| serde_json::from_slice(&p).map_err(|e| format!("bad payload: {e}")))
        {
            Ok(r) => r,
            Err(e) => return JobOutcome::Fail(e),
        };
        match self.reset_mail(services, &request.email).await {
            Ok(()) => JobOutcome::Done,
            Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => {
                JobOutcome::Retry(e.to_string())
            }
            Err(e) => JobOutcome::Fail(e.to_string()),
        }
    }

    async fn reset_mail(&self, services: &crate::Services, email: &str) -> Result<()> {
        let store = &self.ctx.store;
        let Some(user) = store.user_by_email(email).await? else {
            tracing::info!("password reset requested for an address no account has");
            return Ok(());
        };
        if user.bot || !user.enabled || user.password_hash.is_none() {
            tracing::info!(user = %user.username, "password reset requested for an account that cannot reset it");
            return Ok(());
        }
        let now = self.ctx.clock.now();
        if store
            .password_reset_since(user.id, now.plus_secs(-RESET_MAIL_INTERVAL_SECS))
            .await?
        {
            tracing::info!(user = %user.username, "password reset mail not sent again so soon");
            return Ok(());
        }
        let (token, expires_in_hours) = services.users.issue_password_reset(&user).await?;
        let link = format!(
            "{}/users/password/edit?token={token}",
            self.ctx.config.external_url()
        );
        let mail = OutgoingMail {
            to: user.email.clone(),
            subject: "Reset password instructions".into(),
            text: format!(
                "Hello {name},\n\n\
                 Someone has requested a link to change your password on {site}. You can \
                 do this through the link below:\n\n{link}\n\n\
                 The link works once and expires in {expires_in_hours} hours. If you didn't \
                 request this, ignore this mail: your password does not change until you \
                 use the link.\n",
                name = user.display_name.as_deref().unwrap_or(&user.username),
                site = self.ctx.config.machine_fqdn.value,
            ),
        };
        let payload = serde_json::to_vec(&mail).map_err(|e| Error::internal(e.to_string()))?;
        self.enqueue(kinds::SEND_MAIL, &payload, MAIL_AAD, MAIL_ATTEMPTS)
            .await?;
        tracing::info!(user = %user.username, "password reset mail queued");
        Ok(())
    }

    /// The worker's job that sends one mail.
    pub async fn run_send(&self, payload: &str) -> JobOutcome {
        let mail: OutgoingMail = match self
            .open(payload, MAIL_AAD)
            .and_then(|p| serde_json::from_slice(&p).map_err(|e| format!("bad payload: {e}")))
        {
            Ok(m) => m,
            Err(e) => return JobOutcome::Fail(e),
        };
        let Some(mailer) = &self.ctx.mailer else {
            return JobOutcome::Retry("no mailer configured (email.*)".into());
        };
        match mailer.send(&mail).await {
            Ok(()) => {
                tracing::info!(via = mailer.target(), subject = %mail.subject, "mail sent");
                JobOutcome::Done
            }
            Err(MailError::Temporary(e)) => JobOutcome::Retry(e),
            Err(MailError::Permanent(e)) => JobOutcome::Fail(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> Email {
        portcullis_config::Config::default().email
    }

    #[test]
    fn the_message_has_the_sender_reply_to_and_text() {
        let mut config = email();
        config.name = "Registry".into();
        config.from = "registry@example.com".into();
        config.reply_to = "help@example.com".into();
        let mailer = Mailer::new(&config).unwrap();
        assert_eq!(mailer.target(), "sendmail /usr/sbin/sendmail");
        let message = mailer
            .message(&OutgoingMail {
                to: "alice@example.org".into(),
                subject: "Hi".into(),
                text: "Hello".into(),
            })
            .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        for want in [
            "From: Registry <registry@example.com>",
            "Reply-To: help@example.com",
            "To: alice@example.org",
            "Subject: Hi",
            "Content-Type: text/plain; charset=utf-8",
        ] {
            assert!(raw.contains(want), "{want} in {raw}");
        }
        let bad = mailer.message(&OutgoingMail {
            to: "not an address".into(),
            subject: "Hi".into(),
            text: "Hello".into(),
        });
        assert!(matches!(bad, Err(MailError::Permanent(_))));
    }

    // The SMTP transport's connection pool belongs to a runtime.
    #[tokio::test]
    async fn smtp_settings_become_a_transport() {
        let mut config = email();
        config.smtp.enabled = true;
        config.smtp.address = "mail.example.com".into();
        config.smtp.port = 465;
        config.smtp.ssl_tls = SmtpImplicitTls::Ssl;
        assert_eq!(
            Mailer::new(&config).unwrap().target(),
            "smtp://mail.example.com:465"
        );
        config.smtp.ca_file = "/nonexistent/ca.pem".into();
        let err = Mailer::new(&config).err().unwrap();
        assert!(
            err.starts_with("email.smtp.ca_file /nonexistent/ca.pem"),
            "{err}"
        );
        config.smtp.ca_file = String::new();
        config.smtp.ca_path = "/nonexistent".into();
        let err = Mailer::new(&config).err().unwrap();
        assert!(err.starts_with("email.smtp.ca_path"), "{err}");
    }
}
