"""E-mail: .eml (the standard library's `email` package) and Outlook .msg (extract-msg, the `msg` extra).

The text is a short header block (Subject, From, To, Cc, Date) and the body: text/plain when the message
has it, else its HTML through the HTML loader. The subject is the title and the citation's heading.
Headers also go into the metadata. Attachments of a type ragcli reads are parsed by their own loader
and returned as `attachments`, which the ingest indexes as documents of their own whose source is
"<message>#attachment/<file name>"; other attachments are only named in the message's text.

An S/MIME- or PGP-encrypted message has no readable body: that is a failure with that reason.
"""

from __future__ import annotations

import logging
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path, PurePath

from ragcli.errors import PermanentError, RagcliError
from ragcli.loaders.blocks import Block, document_from_blocks
from ragcli.loaders.text import EMPTY_DOCUMENT, normalize_newlines
from ragcli.models import ParsedDocument

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 50
MAX_NESTING = 3
_HEADERS = ("subject", "from", "to", "cc", "date")
_ENCRYPTED_TYPES = {"multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime"}


class EmlLoader:
    name = "eml"

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        if not data.strip():
            raise PermanentError(EMPTY_DOCUMENT)
        message = BytesParser(policy=policy.default).parsebytes(data)
        if not isinstance(message, EmailMessage) or not (message.keys() or message.get_payload()):
            raise PermanentError("not an e-mail message: no headers and no body")
        headers = {name: _header(message, name) for name in _HEADERS}
        body = _body(message, path)
        attachments, named = _attachments(message, path, self.depth)
        if not body.strip() and message.get_content_type() in _ENCRYPTED_TYPES:
            raise PermanentError(
                f"encrypted e-mail ({message.get_content_type()}): the body cannot be read without the key"
            )
        return mail_document(path, headers, body, named, attachments)


def mail_document(
    path: Path,
    headers: dict[str, str],
    body: str,
    attachment_names: list[str],
    attachments: list[tuple[str, ParsedDocument]],
) -> ParsedDocument:
    subject = headers.get("subject") or ""
    header_lines = [f"{name.capitalize()}: {value}" for name, value in headers.items() if value]
    if attachment_names:
        header_lines.append("Attachments: " + ", ".join(attachment_names))
    heading = subject or None
    blocks = [Block("\n".join(header_lines), heading), Block(body, heading)]
    if not body.strip() and not attachments:
        raise PermanentError("e-mail without a text body or readable attachment")
    document = document_from_blocks(blocks, subject, path.name, {k: v for k, v in headers.items() if v})
    document.attachments = attachments
    return document


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name)
    except Exception:  # a malformed encoded-word header must not cost the body
        value = message.get_all(name, failobj=[""])[0] if message.get_all(name) else ""
    return " ".join(str(value or "").split())


def _body(message: EmailMessage, path: Path) -> str:
    try:
        part = message.get_body(preferencelist=("plain", "html"))
    except Exception:
        part = None
    if part is None:
        return ""
    try:
        content = part.get_content()
    except Exception:  # wrong charset or transfer encoding: take what decodes
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else str(payload or "")
    if not isinstance(content, str):
        return ""
    if part.get_content_type() == "text/html":
        return html_to_text(content, path)
    return normalize_newlines(content)


def html_to_text(html: str, path: Path) -> str:
    from ragcli.loaders.html import HtmlLoader

    try:
        return HtmlLoader().load(path, html.encode("utf-8")).text
    except RagcliError:
        return ""


def _attachments(
    message: EmailMessage, path: Path, depth: int
) -> tuple[list[tuple[str, ParsedDocument]], list[str]]:
    parsed: list[tuple[str, ParsedDocument]] = []
    names: list[str] = []
    for index, part in enumerate(message.iter_attachments(), start=1):
        if index > MAX_ATTACHMENTS:
            break
        name = _attachment_name(part, index)
        names.append(name)
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            data = inner[0] if isinstance(inner, list) and inner else inner
            payload = data.as_bytes() if hasattr(data, "as_bytes") else b""
        else:
            payload = part.get_payload(decode=True) or b""
        document = load_attachment(path, name, payload, depth)
        if document is not None:
            parsed.extend(flatten(name, document))
    return parsed, names


def flatten(name: str, document: ParsedDocument) -> list[tuple[str, ParsedDocument]]:
    """An attached message's own attachments become attachments of the outer message: one level."""
    nested = document.attachments
    document.attachments = []
    return [(name, document)] + [(f"{name}/{inner}", doc) for inner, doc in nested]


def _attachment_name(part: EmailMessage, index: int) -> str:
    name = part.get_filename() or ""
    if not name and part.get_content_type() == "message/rfc822":
        name = f"message-{index}.eml"
    # Only the last path component: a crafted name must not make a source outside its message.
    name = PurePath(name.replace("\\", "/")).name.replace("#", "_")
    return name or f"attachment-{index}"


def load_attachment(parent: Path, name: str, data: bytes, depth: int) -> ParsedDocument | None:
    """The attachment parsed by the loader of its type; None if ragcli does not read it or it fails."""
    from ragcli.loaders import get_loader
    from ragcli.loaders.ocr import IMAGE_SUFFIXES

    child_path = Path(f"{parent}#attachment/{name}")
    # Pictures in mail are logos, signatures and screenshots far more often than documents; OCR of each
    # would cost seconds per message for noise.
    if not data or depth >= MAX_NESTING or child_path.suffix.lower() in IMAGE_SUFFIXES:
        return None
    loader = EmlLoader(depth + 1) if child_path.suffix.lower() == ".eml" else get_loader(child_path)
    if loader is None:
        return None
    try:
        document = loader.load(child_path, data)
    except RagcliError as exc:
        log.info("%s: attachment %s not indexed: %s", parent, name, exc)
        return None
    except Exception:  # one bad attachment must not cost the message
        log.info("%s: attachment %s not indexed: unreadable", parent, name, exc_info=True)
        return None
    return document


class MsgLoader:
    name = "msg"

    def load(self, path: Path, data: bytes) -> ParsedDocument:
        from ragcli.loaders.blocks import OLE_MAGIC, missing_extra

        try:
            import extract_msg
        except ImportError as exc:
            raise missing_extra("Outlook .msg files", "msg") from exc
        if not data.strip():
            raise PermanentError(EMPTY_DOCUMENT)
        if not data.startswith(OLE_MAGIC):
            raise PermanentError("corrupt Outlook .msg file: not an OLE compound file")
        try:
            message = extract_msg.openMsg(data, strict=False, delayAttachments=False)
        except Exception as exc:  # untrusted bytes
            raise PermanentError(f"corrupt Outlook .msg file: {type(exc).__name__}: {exc}"[:300]) from exc
        try:
            return self._document(path, message)
        except PermanentError:
            raise
        except Exception as exc:
            raise PermanentError(f"corrupt Outlook .msg file: {type(exc).__name__}: {exc}"[:300]) from exc
        finally:
            message.close()

    def _document(self, path: Path, message: object) -> ParsedDocument:
        get = lambda name: " ".join(str(getattr(message, name, "") or "").split())  # noqa: E731
        headers = {
            "subject": get("subject"),
            "from": get("sender"),
            "to": get("to"),
            "cc": get("cc"),
            "date": get("date"),
        }
        body = getattr(message, "body", None) or ""
        if not str(body).strip():
            html = getattr(message, "htmlBody", None) or b""
            body = html_to_text(html.decode("utf-8", "replace") if isinstance(html, bytes) else html, path)
        attachments: list[tuple[str, ParsedDocument]] = []
        names: list[str] = []
        for index, attachment in enumerate(getattr(message, "attachments", [])[:MAX_ATTACHMENTS], 1):
            name = PurePath(
                str(attachment.longFilename or attachment.shortFilename or "").replace("\\", "/")
            ).name
            name = name.replace("#", "_") or f"attachment-{index}"
            names.append(name)
            data = attachment.data if isinstance(attachment.data, bytes) else None
            document = load_attachment(path, name, data or b"", 0)
            if document is not None:
                attachments.extend(flatten(name, document))
        return mail_document(path, headers, normalize_newlines(str(body)), names, attachments)
