"""`kernel.plugin.aws_error`: the code and message of an AWS error reply, as kernel-dynamodb's
and kernel-sqs's sentences name them, also when botocore could not parse the body."""

from __future__ import annotations

from kernel.plugin import aws_error


def test_a_parsed_reply() -> None:
    reply = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
    assert aws_error(reply) == ("ThrottlingException", "Rate exceeded")


def test_iams_xml_inside_a_json_protocols_message() -> None:
    """moto answers a refused signature in IAM's XML, which botocore leaves in the message."""
    xml = ('<?xml version="1.0"?><ErrorResponse><Errors><Error><Code>InvalidClientTokenId'
           '</Code><Message>The security token included in the request is invalid.</Message>'
           '</Error></Errors></ErrorResponse>')
    assert aws_error({"Error": {"Code": "403", "Message": xml}}) == (
        "InvalidClientTokenId", "The security token included in the request is invalid.")


def test_an_empty_reply() -> None:
    assert aws_error({}) == ("Unknown", "")
