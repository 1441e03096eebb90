from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from rag_helpers import EVENT_PUT

from tierwise_rag.events import EventFormatError, FolderSync, S3EventApplier, SqsConsumer, parse_s3_notification
from tierwise_rag.settings import S3Source

QUEUE = "https://sqs.us-west-2.amazonaws.com/123456789012/rag-events"
SOURCES = [S3Source(bucket="kb-bucket", prefix="news/", collection="support-news", team="support")]


def _delete_event(seq: str) -> str:
    ev = json.loads(EVENT_PUT)
    rec = ev["Records"][0]
    rec["eventName"] = "ObjectRemoved:Delete"
    rec["s3"]["object"] = {"key": "news/status+page.md", "sequencer": seq}
    return json.dumps(ev)


def test_parse_real_shapes() -> None:
    [ev] = parse_s3_notification(EVENT_PUT)
    assert (ev.action, ev.bucket, ev.key, ev.size, ev.sequencer) == ("upsert", "kb-bucket", "news/status page.md", 22, "0055AED6DCD90281E5")
    sns = json.dumps({"Type": "Notification", "MessageId": "x", "TopicArn": "arn:aws:sns:us-west-2:1:t", "Message": _delete_event("0055AED6DCD90281E6")})
    assert parse_s3_notification(sns)[0].action == "delete"
    assert parse_s3_notification('{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"kb-bucket"}') == []
    with pytest.raises(EventFormatError):
        parse_s3_notification("not json")
    with pytest.raises(EventFormatError, match="Records"):
        parse_s3_notification('{"hello": 1}')


def test_sqs_consumer_with_real_boto3_wire_shapes(kb) -> None:
    kb.create_collection("platform", "support-news", "fluid")
    sqs = boto3.client("sqs", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    s3 = boto3.client("s3", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    msgs = [
        {"MessageId": "m1", "ReceiptHandle": "rh1", "Body": EVENT_PUT},
        {"MessageId": "m2", "ReceiptHandle": "rh2", "Body": "garbage"},
        {"MessageId": "m3", "ReceiptHandle": "rh3", "Body": _delete_event("0055AED6DCD90281E4")},  # older than the put
    ]
    body = b"# Status\n\nAll systems green."
    with Stubber(sqs) as sqs_stub, Stubber(s3) as s3_stub:
        sqs_stub.add_response("receive_message", {"Messages": msgs}, {"QueueUrl": QUEUE, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0,
                                                                      "MessageSystemAttributeNames": ["ApproximateReceiveCount"]})
        s3_stub.add_response("get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))},
                             {"Bucket": "kb-bucket", "Key": "news/status page.md", "VersionId": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"})
        sqs_stub.add_response("delete_message", {}, {"QueueUrl": QUEUE, "ReceiptHandle": "rh1"})
        sqs_stub.add_response("delete_message", {}, {"QueueUrl": QUEUE, "ReceiptHandle": "rh2"})
        sqs_stub.add_response("delete_message", {}, {"QueueUrl": QUEUE, "ReceiptHandle": "rh3"})
        consumer = SqsConsumer(sqs, s3, QUEUE, lambda fetch: S3EventApplier(kb, SOURCES, fetch), wait_seconds=0)
        stats = consumer.poll_once()
        sqs_stub.assert_no_pending_responses()
    assert stats == {"messages": 3, "applied": 2, "failed": 0, "malformed": 1}
    docs = kb.documents("support", "support-news")
    assert list(docs) == ["s3://kb-bucket/news/status page.md"]  # the stale delete did not remove it


def test_sqs_message_left_for_redelivery_when_apply_fails(kb) -> None:
    sqs = boto3.client("sqs", region_name="us-west-2", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(sqs) as stub:
        stub.add_response("receive_message", {"Messages": [{"MessageId": "m1", "ReceiptHandle": "rh1", "Body": EVENT_PUT}]})

        def failing_fetch(*_):
            raise ConnectionError("s3 down")

        consumer = SqsConsumer(sqs, None, QUEUE, lambda _f: S3EventApplier(kb, SOURCES, failing_fetch), wait_seconds=0)
        kb.create_collection("platform", "support-news", "fluid")
        assert consumer.poll_once()["failed"] == 1  # no delete_message stubbed: a call would raise
        stub.assert_no_pending_responses()


def test_folder_sync_reconciles_and_applies_changes(kb, tmp_path) -> None:
    from watchfiles import Change

    kb.create_collection("platform", "support-news", "fluid")
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.md").write_text("# A\n\nalpha text")
    (tmp_path / "sub" / "b.txt").write_text("beta text")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    sync = FolderSync(kb, tmp_path, "support-news", "support")
    assert {(r.id, r.status) for r in sync.sync()} == {("a.md", "ingested"), ("sub/b.txt", "ingested")}
    (tmp_path / "a.md").write_text("# A\n\nalpha text, edited")
    (tmp_path / "sub" / "b.txt").unlink()
    (tmp_path / "c.html").write_bytes(b"\xff\xfe bad utf8")
    results = sync.apply_changes({(Change.modified, str(tmp_path / "a.md")), (Change.deleted, str(tmp_path / "sub" / "b.txt")),
                                  (Change.added, str(tmp_path / "c.html"))})
    assert {(r.id, r.status) for r in results} == {("a.md", "ingested"), ("sub/b.txt", "deleted"), ("c.html", "error")}
    # a missed delete is caught by the next reconcile
    (tmp_path / "a.md").unlink()
    assert [(r.id, r.status) for r in sync.sync() if r.status == "deleted"] == [("a.md", "deleted")]
