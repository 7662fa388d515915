//! Mail Latchkey sends people (password-reset links): over SMTP with lettre when
//! `smtp_url` is set, otherwise written to the log with a warning, so that trying Latchkey
//! out needs no mail server. Sending happens off the request: a page answers the same,
//! and as fast, whether or not a mail went out.
//!
//! Floor: core (docs/architecture.md); names only `config`.

use std::sync::Arc;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::Settings;

/// A plain-text mail to one person.
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Sends over SMTP, or, with no server configured (`None`), logs what it would send.
#[derive(Clone)]
pub struct Mailer(Option<Arc<Smtp>>);

struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(smtp) => f.debug_tuple("Mailer").field(&smtp.from.to_string()).finish(),
            None => f.write_str("Mailer(log only)"),
        }
    }
}

impl Mailer {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let (Some(url), Some(from)) = (&settings.smtp_url, &settings.mail_from) else {
            return Ok(Self(None));
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|e| anyhow::anyhow!("smtp_url: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        let from: Mailbox = from.parse().map_err(|e| anyhow::anyhow!("mail_from `{from}`: {e}"))?;
        Ok(Self(Some(Arc::new(Smtp { transport, from }))))
    }

    /// Sends `mail` in the background; failures are logged (without the body, which may hold
    /// a link), never shown to whoever caused the mail.
    pub fn send_later(&self, mail: Mail) {
        let mailer = self.clone();
        tokio::spawn(async move {
            if let Err(error) = mailer.send(mail).await {
                tracing::error!(error = %error, "a mail could not be sent");
            }
        });
    }

    /// Sends `mail` now (the command line, which has no request to keep fast).
    pub async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let Some(smtp) = &self.0 else {
            tracing::warn!(
                to = %mail.to,
                subject = %mail.subject,
                body = %mail.body,
                "no SMTP server is configured (LATCHKEY_SMTP_URL), so this mail was written here instead of sent"
            );
            return Ok(());
        };
        let to: Mailbox = mail.to.parse().map_err(|e| anyhow::anyhow!("recipient: {e}"))?;
        let message = Message::builder()
            .from(smtp.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)?;
        smtp.transport.send(message).await?;
        Ok(())
    }
}
