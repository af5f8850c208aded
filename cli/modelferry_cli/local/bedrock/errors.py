"""Bedrock's modelled errors, with the HTTP status botocore expects for each."""

from __future__ import annotations

# HTTP status of each error, as botocore's models give it (ConflictException is 400 there, not 409).
ERROR_STATUS = {
    "ValidationException": 400,
    "ConflictException": 400,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "ModelErrorException": 424,
    "InternalServerException": 500,
}


class BedrockError(Exception):
    """A modelled Bedrock error: becomes an HTTP error response that botocore turns into a ClientError."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = ERROR_STATUS[code]
