"""The kind catalog: every built-in kind, its classification level and whether it is a secret."""

from __future__ import annotations

from dataclasses import dataclass

from veil.detect._finding import Level


@dataclass(frozen=True, slots=True)
class KindInfo:
    level: Level
    secret: bool
    description: str


_C, _H, _M = Level.CRITICAL, Level.HIGH, Level.MEDIUM

_PII: dict[str, tuple[Level, str]] = {
    "EMAIL": (_C, "e-mail address"),
    "PHONE": (_C, "telephone number"),
    "CREDIT_CARD": (_C, "payment card number (Luhn and issuer range checked)"),
    "IBAN": (_C, "international bank account number (mod-97 checked)"),
    "US_SSN": (_C, "US social security number"),
    "US_PASSPORT": (_C, "US passport number (needs context)"),
    "US_DRIVER_LICENSE": (_C, "US driver licence number (needs context)"),
    "UK_NINO": (_C, "UK national insurance number"),
    "PERSON": (_C, "name of a person (NER)"),
    "IP_ADDRESS": (_H, "IPv4 or IPv6 address"),
    "MAC_ADDRESS": (_H, "network hardware address"),
    "URL": (_H, "web address"),
    "CRYPTO_WALLET": (_H, "Bitcoin or Ethereum address"),
    "DATE_OF_BIRTH": (_H, "date next to birth words"),
    "LOCATION": (_H, "place or address (NER)"),
    "ORGANIZATION": (_M, "organization name (NER)"),
    "DATE": (_M, "calendar date or timestamp"),
}

_SECRETS: dict[str, str] = {
    "OPENAI_API_KEY": "OpenAI API key",
    "ANTHROPIC_API_KEY": "Anthropic API key",
    "GOOGLE_API_KEY": "Google / GCP API key",
    "AWS_ACCESS_KEY_ID": "AWS access key id",
    "AWS_SECRET_ACCESS_KEY": "AWS secret access key",
    "AZURE_KEY": "Azure storage key or client secret",
    "GITHUB_TOKEN": "GitHub token (any prefix)",
    "GITLAB_TOKEN": "GitLab token",
    "SLACK_TOKEN": "Slack token",
    "SLACK_WEBHOOK": "Slack incoming-webhook URL",
    "STRIPE_KEY": "Stripe secret or restricted key",
    "TWILIO_KEY": "Twilio API key",
    "SENDGRID_KEY": "SendGrid API key",
    "HUGGINGFACE_TOKEN": "Hugging Face token",
    "NPM_TOKEN": "npm access token",
    "PYPI_TOKEN": "PyPI upload token",
    "SHOPIFY_TOKEN": "Shopify access token",
    "DISCORD_TOKEN": "Discord bot token or webhook",
    "TELEGRAM_BOT_TOKEN": "Telegram bot token",
    "JWT": "JSON Web Token (structure checked)",
    "PRIVATE_KEY": "PEM, OpenSSH or age private key",
    "PASSWORD": "password in code, config or a URL",
    "AUTH_TOKEN": "Authorization header credential",
    "API_TOKEN": "vendor API token recognized by its prefix",
    "GENERIC_SECRET": "high-entropy value assigned to a key/token/secret name",
}

CATALOG: dict[str, KindInfo] = {
    **{kind: KindInfo(level, False, text) for kind, (level, text) in _PII.items()},
    **{kind: KindInfo(Level.CRITICAL, True, text) for kind, text in _SECRETS.items()},
}


def kind_info(kind: str) -> KindInfo | None:
    return CATALOG.get(kind)
