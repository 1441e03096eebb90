from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import ANY, Stubber

from tierwise_guardrails.review_queue import LocalReviewQueue, SqsReviewQueue, TicketAlreadyDecided, TicketNotFound

URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/guardrails-review"


def submit(q, **over):
    return q.submit(**({"team": "t", "direction": "input", "reason": "PROMPT_INJECTION:escalate", "redacted_text": "x", "findings": []} | over))


def test_local_queue_survives_reopen_and_decides_once(tmp_path):
    q = LocalReviewQueue(tmp_path / "q.sqlite3")
    t = submit(q)
    q.close()
    q2 = LocalReviewQueue(tmp_path / "q.sqlite3")  # a restart: nothing lost
    assert [x.id for x in q2.list()] == [t.id]
    done = q2.decide(t.id, approve=False, reviewer="alice", note="no")
    assert done.status == "denied" and done.reviewer == "alice"
    assert q2.list() == [] and q2.get(t.id).status == "denied"
    with pytest.raises(TicketAlreadyDecided):
        q2.decide(t.id, approve=True, reviewer="bob")
    with pytest.raises(TicketNotFound):
        q2.get("nope")
    q2.close()


def test_sqs_queue_sends_and_deletes_through_boto3(tmp_path):
    client = boto3.client("sqs", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    ledger = LocalReviewQueue(tmp_path / "ledger.sqlite3")
    q = SqsReviewQueue(URL, ledger, client=client)
    with Stubber(client) as stub:
        stub.add_response("send_message", {"MessageId": "m-1", "MD5OfMessageBody": "0" * 32}, {"QueueUrl": URL, "MessageBody": ANY, "MessageAttributes": ANY})
        t = submit(q, team="payments")
        stub.assert_no_pending_responses()
    with Stubber(client) as stub:
        stub.add_response(
            "receive_message",
            {"Messages": [
                {"MessageId": "m-0", "ReceiptHandle": "rh-other", "Body": "{}", "MessageAttributes": {"ticket_id": {"DataType": "String", "StringValue": "other"}}},
                {"MessageId": "m-1", "ReceiptHandle": "rh-1", "Body": json.dumps(t.as_dict()), "MessageAttributes": {"ticket_id": {"DataType": "String", "StringValue": t.id}}},
            ]},
            {"QueueUrl": URL, "MaxNumberOfMessages": 10, "MessageAttributeNames": ["ticket_id"], "VisibilityTimeout": 30},
        )
        stub.add_response("delete_message", {}, {"QueueUrl": URL, "ReceiptHandle": "rh-1"})
        done = q.decide(t.id, approve=True, reviewer="alice")
        stub.assert_no_pending_responses()
    assert done.status == "approved" and q.get(t.id).status == "approved"
    q.close()
