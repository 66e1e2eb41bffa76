#!/usr/bin/env python3
"""Run OpenAI's official Python client against a running `collie serve` and print a transcript.

Starts nothing itself: give it the base URL of a server that is already up,

    examples/bin/collie serve --model DIR --port 8000 --api-key KEY &
    /work/pyref/bin/python tools/reference/openai_client_check.py http://127.0.0.1:8000/v1 --api-key KEY

It makes a completion, a chat completion, a streamed chat (the pieces joined must equal the same chat not
streamed, greedy), and a request the server must refuse (temperature < 0: a 400 the client raises as
BadRequestError), printing each request's result. Exits non-zero if any check fails. Never used by tests.
"""

import argparse
import sys

import openai
from openai import OpenAI


def main():
    ap = argparse.ArgumentParser(description="check collie serve with the official OpenAI client")
    ap.add_argument("base_url", help="e.g. http://127.0.0.1:8000/v1")
    ap.add_argument("--api-key", default="none", help="the server's --api-key (any text when it has none)")
    ap.add_argument("--max-tokens", type=int, default=12)
    args = ap.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0)
    failures = []

    def check(ok, what):
        print(("  ok: " if ok else "  FAILED: ") + what)
        if not ok:
            failures.append(what)

    print(f"openai {openai.__version__} against {args.base_url}")
    models = client.models.list()
    model = models.data[0].id
    print(f"models: {[m.id for m in models.data]}")

    print("== completions.create")
    c = client.completions.create(model=model, prompt="Once upon a time", max_tokens=args.max_tokens,
                                  temperature=0)
    print(f"  text: {c.choices[0].text!r}  finish_reason: {c.choices[0].finish_reason}  usage: {c.usage}")
    check(c.usage.total_tokens == c.usage.prompt_tokens + c.usage.completion_tokens, "usage adds up")

    messages = [{"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": "What is the capital of France?"}]
    print("== chat.completions.create")
    chat = client.chat.completions.create(model=model, messages=messages, max_tokens=args.max_tokens,
                                          temperature=0)
    answer = chat.choices[0].message.content
    print(f"  {chat.choices[0].message.role}: {answer!r}  finish_reason: {chat.choices[0].finish_reason}"
          f"  usage: {chat.usage}")
    check(chat.choices[0].message.role == "assistant", "the answer is the assistant's")

    print("== chat.completions.create(stream=True)")
    pieces = []
    finish = None
    usage = None
    stream = client.chat.completions.create(model=model, messages=messages, max_tokens=args.max_tokens,
                                            temperature=0, stream=True, stream_options={"include_usage": True})
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish = choice.finish_reason
    print(f"  pieces: {pieces}")
    print(f"  finish_reason: {finish}  usage: {usage}")
    check("".join(pieces) == answer, "the streamed pieces join into the non-streamed answer")
    check(finish == chat.choices[0].finish_reason, "the same finish reason")
    check(usage is not None and usage.completion_tokens == chat.usage.completion_tokens, "the same usage")

    print("== an error: temperature -1")
    try:
        client.chat.completions.create(model=model, messages=messages, max_tokens=4, temperature=-1)
        check(False, "a 400 was expected")
    except openai.BadRequestError as e:
        print(f"  BadRequestError {e.status_code}: {e.body}")
        check(e.status_code == 400 and e.body.get("param") == "temperature", "400 naming temperature")

    print("all checks passed" if not failures else f"{len(failures)} check(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
