"""Rules on the tokenizer files and the chat template."""

from __future__ import annotations

from collections.abc import Iterator

from modelferry.selection import (
    CHAT_TEMPLATE_FILES,
)
from modelferry.validation.bedrock import (
    SUPPORTED_TOKENIZER_CLASSES,
    TOKENIZER_CONFIG_FILE,
    TOKENIZER_FILE,
)
from modelferry.validation.findings import Finding, finding
from modelferry.validation.options import ValidationOptions
from modelferry.validation.view import ModelView


def tokenizer_present(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    # Presence only: tokenizer.json is megabytes and Bedrock's own loader is the judge of its content.
    if not view.has(TOKENIZER_FILE):
        yield finding("TOKENIZER_MISSING", TOKENIZER_FILE, "no tokenizer.json among the files to copy")


def tokenizer_config(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    document = view.json(TOKENIZER_CONFIG_FILE)
    if not document.present:
        yield finding("TOKENIZER_CONFIG_MISSING", TOKENIZER_CONFIG_FILE, "no tokenizer_config.json among the files")
        return
    if document.error or document.data is None:
        yield finding("TOKENIZER_CONFIG_MISSING", TOKENIZER_CONFIG_FILE, f"unusable: {document.error}")
        return
    tokenizer_class = document.data.get("tokenizer_class")
    # Without a class, transformers picks one from tokenizer.json: nothing to object to.
    if tokenizer_class is not None and tokenizer_class not in SUPPORTED_TOKENIZER_CLASSES:
        yield finding(
            "TOKENIZER_CLASS_UNSUPPORTED",
            TOKENIZER_CONFIG_FILE,
            f"tokenizer_class {tokenizer_class!r} is not one Bedrock loads",
        )


def chat_template(view: ModelView, options: ValidationOptions) -> Iterator[Finding]:
    if any(view.has(path) for path in CHAT_TEMPLATE_FILES):
        return
    tokenizer_settings = view.json(TOKENIZER_CONFIG_FILE).data
    if tokenizer_settings and tokenizer_settings.get("chat_template"):
        return
    yield finding(
        "CHAT_TEMPLATE_MISSING",
        None,
        "no chat_template.jinja, chat_template.json or `chat_template` in tokenizer_config.json: OpenAI "
        "chat-completions requests (`messages`) will not work, completion requests (`prompt`) will",
    )
