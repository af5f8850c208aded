"""Domain errors.

The class name is the contract with the state machine: a Lambda error reaches Step Functions as the exception's
class name, and `statemachine/modelferry.asl.json` matches those names in Retry and Catch. Rename one here and the
structural test (tests/unit/test_state_machine_structure.py) fails until the definition follows.
"""

from __future__ import annotations


class ModelferryError(Exception):
    """Base class: every error the workflow raises on purpose."""


# --- Request and plan -------------------------------------------------------------------------------------------
class InvalidRequest(ModelferryError):
    """The execution input (or a request file / event) broke a rule. The message names the field and the rule."""


class HubRepoNotFound(ModelferryError):
    """The repository does not exist, or is private and the token (if any) cannot see it."""


class HubRevisionNotFound(ModelferryError):
    """The repository exists but the revision (branch, tag or commit) does not."""


class HubAccessDenied(ModelferryError):
    """Gated or private repository: a token with access is needed (stored in Secrets Manager)."""


class HubRateLimited(ModelferryError):
    """The Hub answered 429 and kept doing so past the in-process wait budget: retry later."""


class HubUnavailable(ModelferryError):
    """5xx answers or broken connections from the Hub past the in-process retries: retry later."""


class ModelNotImportable(ModelferryError):
    """Pre-copy validation found errors: Bedrock would refuse this model. Nothing was copied."""


class FileTooLargeForLambda(ModelferryError):
    """A file is above the Lambda size threshold and no Fargate copy task is configured."""


# --- Copy -----------------------------------------------------------------------------------------------------------
class ChecksumMismatch(ModelferryError):
    """The bytes read from the Hub do not hash to the sha256 (or git blob sha1) the Hub published."""


class SizeMismatch(ModelferryError):
    """The number of bytes read from the Hub differs from the planned size."""


class SourceChanged(ModelferryError):
    """The Hub serves a different commit or object than the one pinned at planning time."""


class TransferInterrupted(ModelferryError):
    """A transient failure (Hub or S3) outlasted the in-process retries; the partial upload was aborted."""


class CopyTimedOut(ModelferryError):
    """The copy of one file was still running at its time limit; recorded for the failure notification just before
    the Lambda is stopped (the state machine sees the stop itself: Lambda.Unknown or Sandbox.Timedout)."""


class StorageAccessDenied(ModelferryError):
    """S3 refused an operation on the model bucket (permissions or bucket policy)."""


# --- Validate in S3 ----------------------------------------------------------------------------------------------
class CopyIncomplete(ModelferryError):
    """A planned file is missing in S3 or its recorded checksum/size differs from the manifest."""


class ModelValidationFailed(ModelferryError):
    """Post-copy validation found errors that cannot be fixed automatically."""


# --- Import -------------------------------------------------------------------------------------------------------
class ImportQuotaExceeded(ModelferryError):
    """Bedrock allows one import job per Region at a time and another one is running: wait and retry."""


class BedrockThrottled(ModelferryError):
    """Bedrock answered ThrottlingException: retry with backoff."""


class ImportRoleNotReady(ModelferryError):
    """Bedrock cannot assume the import role yet (IAM propagation after a fresh deploy): retry."""


class ImportRejected(ModelferryError):
    """Bedrock refused to start the job (ValidationException, AccessDeniedException...). Not retryable."""


class ImportedModelExists(ModelferryError):
    """An imported model with this name exists and `if_exists` is `fail`."""


class ImportJobFailed(ModelferryError):
    """The import job ended `Failed`; the message carries Bedrock's failureMessage."""


class ImportTimedOut(ModelferryError):
    """The import job did not finish within the ceiling; the message says how long it waited and the job ARN."""


class BedrockUnavailable(ModelferryError):
    """Bedrock answered InternalServerException or ServiceUnavailableException: retry with backoff."""


class ImportQuotaWaitTimedOut(ModelferryError):
    """Other import jobs kept the one-job-per-Region quota busy past the wait ceiling (ImportQuotaWaitSeconds)."""


class ImportQueueUnavailable(ModelferryError):
    """The import queue's table or Step Functions' task-token API answered a throttling or server error: retry."""


class ImportedModelQuotaReached(ModelferryError):
    """The account holds as many imported models as its quota allows: delete one or raise the quota."""


# --- Verify -------------------------------------------------------------------------------------------------------
class ModelNotReady(ModelferryError):
    """InvokeModel answered ModelNotReadyException (cold start): retry with its own budget."""


class InvocationFailed(ModelferryError):
    """InvokeModel failed for a reason other than readiness or throttling."""


class VerificationFailed(ModelferryError):
    """The model answered, but the reply is not a usable chat completion (or misses `verify_expect`)."""


class ModelNotReadyTimedOut(ModelferryError):
    """The model kept answering ModelNotReadyException past its budget (ModelNotReadyBudgetSeconds)."""


# --- Notify -------------------------------------------------------------------------------------------------------
class NotificationFailed(ModelferryError):
    """SNS or EventBridge refused the outcome message."""
