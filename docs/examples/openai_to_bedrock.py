"""The same chat completion, first as written for OpenAI, then sent to a model imported into Amazon Bedrock.

With OpenAI's client (not run here):

    from openai import OpenAI
    client = OpenAI()
    completion = client.chat.completions.create(
        model="gpt-oss-20b",
        messages=[{"role": "user", "content": "What does Custom Model Import do?"}],
        max_tokens=512,
        temperature=0.0,
    )
    print(completion.choices[0].message.content)

With boto3, the body is the same JSON and the reply the same `chat.completion` object: models imported after
2025-11-11 accept OpenAI ChatCompletion bodies through InvokeModel (AWS: "Invoke your imported model",
https://docs.aws.amazon.com/bedrock/latest/userguide/invoke-imported-model.html). Run it with the model's ARN:

    python openai_to_bedrock.py arn:aws:bedrock:us-east-1:123456789012:imported-model/abc123
"""

from __future__ import annotations

import json
import sys

import boto3
from botocore.config import Config


def main(model_arn: str) -> None:
    # A cold model answers ModelNotReadyException for up to about 5 minutes: botocore retries it (AWS's advice).
    runtime = boto3.client("bedrock-runtime", config=Config(retries={"mode": "standard", "total_max_attempts": 10}))
    body = {
        "messages": [{"role": "user", "content": "What does Custom Model Import do?"}],
        "max_tokens": 512,
        "temperature": 0.0,
    }
    response = runtime.invoke_model(
        modelId=model_arn, body=json.dumps(body), contentType="application/json", accept="application/json"
    )
    completion = json.loads(response["body"].read())
    message = completion["choices"][0]["message"]
    # Where a reasoning model (GPT-OSS) puts its reasoning is not documented by AWS: look for it, do not require it.
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if reasoning:
        print(f"reasoning: {reasoning}")
    print(message["content"])
    print(f"finish_reason: {completion['choices'][0]['finish_reason']}, usage: {completion['usage']}")


if __name__ == "__main__":
    main(sys.argv[1])
