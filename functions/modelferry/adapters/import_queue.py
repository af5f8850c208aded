"""The line for Bedrock's import slot, kept in a DynamoDB table: one partition per Region.

Items of a Region's partition (key `region`, sort key `item`):
- `SLOT`: `holder` (the execution ARN holding the slot, absent when it is free) and `holder_since`;
- `TICKETS`: `last_ticket`, the counter that numbers runs in the order they join;
- `RUN#<execution ARN>`: one run in line or holding the slot: its `ticket`, `task_token`, `queued_at`, `status`
  (`waiting`, then `granted` once SendTaskSuccess reached it), `granted_at`, the model and repository names.

Every write is conditional, so each call can be repeated (a Lambda retried by Step Functions) without taking two
places or two slots: the run's item is created only if absent (its key is the execution ARN), the slot is claimed
only while free and given back only by its holder. Reads are strongly consistent (DynamoDB developer guide, "Read
consistency"): a run that has just joined or a slot just freed is seen by the next call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from modelferry.adapters.aws import error_code, error_message
from modelferry.errors import ImportQueueUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

SLOT = "SLOT"
TICKETS = "TICKETS"
RUN_PREFIX = "RUN#"
WAITING = "waiting"
GRANTED = "granted"
# DynamoDB's answers worth another attempt (DynamoDB developer guide, "Error handling with DynamoDB"); boto3's
# standard retries have already tried them a few times when they reach here.
_RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)


@dataclass(frozen=True)
class QueueEntry:
    execution_arn: str
    ticket: int
    task_token: str
    queued_at: str
    status: str
    model_name: str
    repo_id: str
    granted_at: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> QueueEntry:
        return cls(
            execution_arn=item["execution_arn"]["S"],
            ticket=int(item["ticket"]["N"]),
            task_token=item["task_token"]["S"],
            queued_at=item["queued_at"]["S"],
            status=item["status"]["S"],
            model_name=item.get("model_name", {}).get("S", ""),
            repo_id=item.get("repo_id", {}).get("S", ""),
            granted_at=item.get("granted_at", {}).get("S"),
        )


@dataclass(frozen=True)
class Slot:
    holder: str | None
    holder_since: str | None


class ImportQueue:
    """One Region's line and slot in the table `table_name`."""

    def __init__(self, dynamodb: DynamoDBClient, table_name: str, region: str) -> None:
        self.dynamodb = dynamodb
        self.table_name = table_name
        self.region = region

    def _key(self, item: str) -> dict[str, Any]:
        return {"region": {"S": self.region}, "item": {"S": item}}

    # --- the line ---------------------------------------------------------------------------------------------
    def entry(self, execution_arn: str) -> QueueEntry | None:
        try:
            response = self.dynamodb.get_item(
                TableName=self.table_name, Key=self._key(RUN_PREFIX + execution_arn), ConsistentRead=True
            )
        except ClientError as exc:
            raise _translate(exc, "GetItem") from exc
        item = response.get("Item")
        return QueueEntry.from_item(item) if item else None

    def entries(self) -> list[QueueEntry]:
        """Every run in line or holding the slot, in ticket order (the order they joined)."""
        found: list[QueueEntry] = []
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "TableName": self.table_name,
                "KeyConditionExpression": "#region = :region AND begins_with(#item, :prefix)",
                "ExpressionAttributeNames": {"#region": "region", "#item": "item"},
                "ExpressionAttributeValues": {":region": {"S": self.region}, ":prefix": {"S": RUN_PREFIX}},
                "ConsistentRead": True,
            }
            if start:
                request["ExclusiveStartKey"] = start
            try:
                response = self.dynamodb.query(**request)
            except ClientError as exc:
                raise _translate(exc, "Query") from exc
            found.extend(QueueEntry.from_item(item) for item in response.get("Items", []))
            start = response.get("LastEvaluatedKey")
            if not start:
                return sorted(found, key=lambda entry: entry.ticket)

    def waiting(self) -> list[QueueEntry]:
        return [entry for entry in self.entries() if entry.status == WAITING]

    def mark_granted(self, entry: QueueEntry, granted_at: str) -> bool:
        """Record that SendTaskSuccess reached `entry`'s token; False if a newer attempt replaced the token since."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(RUN_PREFIX + entry.execution_arn),
                UpdateExpression="SET #status = :granted, granted_at = :at",
                ConditionExpression="task_token = :token",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":granted": {"S": GRANTED},
                    ":at": {"S": granted_at},
                    ":token": {"S": entry.task_token},
                },
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise _translate(exc, "UpdateItem") from exc
        return True

    def leave(self, execution_arn: str) -> None:
        """Take the run out of the line (nothing happens if it is not there)."""
        try:
            self.dynamodb.delete_item(TableName=self.table_name, Key=self._key(RUN_PREFIX + execution_arn))
        except ClientError as exc:
            raise _translate(exc, "DeleteItem") from exc

    # --- the slot ---------------------------------------------------------------------------------------------
    def slot(self) -> Slot:
        try:
            item = self.dynamodb.get_item(TableName=self.table_name, Key=self._key(SLOT), ConsistentRead=True).get(
                "Item"
            )
        except ClientError as exc:
            raise _translate(exc, "GetItem") from exc
        item = item or {}
        return Slot(holder=item.get("holder", {}).get("S"), holder_since=item.get("holder_since", {}).get("S"))

    def claim(self, execution_arn: str, at: str) -> bool:
        """Give the free slot to `execution_arn`; False if someone holds it (the same run included)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(SLOT),
                UpdateExpression="SET holder = :run, holder_since = :at",
                ConditionExpression="attribute_not_exists(holder)",
                ExpressionAttributeValues={":run": {"S": execution_arn}, ":at": {"S": at}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise _translate(exc, "UpdateItem") from exc
        return True

    def free(self, execution_arn: str) -> bool:
        """Free the slot if `execution_arn` holds it; False if it does not (already freed, or someone else's)."""
        try:
            self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(SLOT),
                UpdateExpression="REMOVE holder, holder_since",
                ConditionExpression="holder = :run",
                ExpressionAttributeValues={":run": {"S": execution_arn}},
            )
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise _translate(exc, "UpdateItem") from exc
        return True


class JoinableImportQueue(ImportQueue):
    """The queue as JoinImportQueue sees it: the only caller that adds runs to the line (and needs PutItem)."""

    def join(self, execution_arn: str, task_token: str, *, queued_at: str, model_name: str, repo_id: str) -> QueueEntry:
        """This run's place in line: a new one at the back, or (a repeated call) the one it has, with the task token
        of the latest attempt (Step Functions gives every attempt of a task a new token, and the attempt waiting is
        the one to tell, even if an earlier one was told: a task retried after its Lambda failed waits anew)."""
        existing = self.entry(execution_arn)
        if existing is not None:
            return self._refresh_token(existing, task_token)
        ticket = self._next_ticket()  # a call that fails after this leaves a gap in the numbers, not a second place
        item = {
            **self._key(RUN_PREFIX + execution_arn),
            "execution_arn": {"S": execution_arn},
            "ticket": {"N": str(ticket)},
            "task_token": {"S": task_token},
            "queued_at": {"S": queued_at},
            "status": {"S": WAITING},
            "model_name": {"S": model_name},
            "repo_id": {"S": repo_id},
        }
        try:
            self.dynamodb.put_item(
                TableName=self.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(#item)",
                ExpressionAttributeNames={"#item": "item"},
            )
        except ClientError as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise _translate(exc, "PutItem") from exc
            # A concurrent attempt of the same task joined first: keep its place.
            raced = self.entry(execution_arn)
            if raced is None:
                raise ImportQueueUnavailable(f"the line entry of {execution_arn} vanished while joining") from exc
            return self._refresh_token(raced, task_token)
        return QueueEntry.from_item(item)

    def _refresh_token(self, entry: QueueEntry, task_token: str) -> QueueEntry:
        if entry.task_token == task_token:
            return entry
        try:
            response = self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(RUN_PREFIX + entry.execution_arn),
                # Not told on the new token yet, whatever the old one heard: the hand-over tells it (again).
                UpdateExpression="SET task_token = :token, #status = :waiting",
                ConditionExpression="attribute_exists(#item)",
                ExpressionAttributeNames={"#item": "item", "#status": "status"},
                ExpressionAttributeValues={":token": {"S": task_token}, ":waiting": {"S": WAITING}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            raise _translate(exc, "UpdateItem") from exc
        return QueueEntry.from_item(response["Attributes"])

    def _next_ticket(self) -> int:
        try:
            response = self.dynamodb.update_item(
                TableName=self.table_name,
                Key=self._key(TICKETS),
                UpdateExpression="ADD last_ticket :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            raise _translate(exc, "UpdateItem") from exc
        return int(response["Attributes"]["last_ticket"]["N"])


def _translate(exc: ClientError, action: str) -> Exception:
    code = error_code(exc)
    if code in _RETRYABLE:
        return ImportQueueUnavailable(f"DynamoDB {action} answered {code}: {error_message(exc)}")
    return exc
