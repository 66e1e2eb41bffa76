#!/usr/bin/env python3
"""Generate the chat-template fixtures used by collie-models' ChatTemplate tests.

Run from the repository root (no network, no Hugging Face hub):

    /work/pyref/bin/python tools/reference/make_chat_fixtures.py
    # or: ... --out collie-models/src/test/resources/fixtures/chat

Needs tokenizers, transformers (>= 5) and jinja2. Produced with transformers 5.18.0, tokenizers 0.23.2,
jinja2 3.1.6 (recorded in every cases.json). Deterministic: a second run rewrites every file byte for byte.

One directory per template under --out:

  qwen2.5/           Qwen2.5-Instruct's template (tools branch, default system prompt, tool turns), as
                     Qwen ships it: "chat_template" inside tokenizer_config.json
  llama3/            Meta-Llama-3-8B-Instruct's template (bos_token, `| trim`); bos_token written as an
                     {"content": ...} object in tokenizer_config.json, template inside it
  chatglm3/          ChatGLM3-6B's template ([gMASK]sop, <|role|> tokens, any role)
  llama2/            Llama-2-chat's template (raise_exception, messages[1:], .strip(), bos/eos)
  qwen2-generation/  Qwen2-Instruct's template with each assistant turn (content, <|im_end|> and the newline
                     after it) inside {% generation %} ... {% endgeneration %}; saved as transformers 5 saves a
                     template: chat_template.jinja beside tokenizer_config.json
  python-strings/    a template of our own that calls the Python string methods and filters chat templates use
                     (.strip/.lstrip/.rstrip with and without characters, .startswith/.endswith with a string
                     and a tuple, .split with and without a separator and maxsplit, .replace, .upper/.lower,
                     | tojson with and without indent, | trim, raise_exception)

Each directory holds what save_pretrained writes (tokenizer.json, tokenizer_config.json, chat_template.jinja
when the template is not moved into tokenizer_config.json) and cases.json:

  {"versions": {...}, "template_source": "...", "has_generation_blocks": bool,
   "cases": [{"name", "messages", "add_generation_prompt",
              "text"       apply_chat_template(tokenize=False),
              "ids"        apply_chat_template(tokenize=True) input_ids (no special tokens added: HF's
                           add_special_tokens=False),
              "assistant_masks"  only where the template has generation blocks:
                           apply_chat_template(return_dict=True, return_assistant_tokens_mask=True)},
             {"name", "messages", "add_generation_prompt", "error": the TemplateError's message}]}

Every number in cases.json comes from the tokenizer re-loaded from the written directory with
PreTrainedTokenizerFast.from_pretrained, so the files on disk are what transformers reads.

The tokenizers are tiny byte-level BPEs (vocabulary 512, trained here on the conversations below) with each
template's special tokens added as special added tokens; they are not the models' real vocabularies (ChatGLM3's
real tokenizer is a SentencePiece model with custom code), only the templates and special tokens are the models'.
"""

import argparse
import json
import os
import shutil
import sys

import jinja2
import tokenizers
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEFAULT_OUT = os.path.join(REPO_ROOT, "collie-models", "src", "test", "resources", "fixtures", "chat")

# ---------------------------------------------------------------------------------------------------------------
# The templates. Each is the string from the model's tokenizer_config.json on the Hugging Face hub, written here
# from memory of those files (there is no network here to download them); where we are not certain of a detail it
# says so. Python string escapes (\n) are the JSON file's escapes.
# ---------------------------------------------------------------------------------------------------------------

# Qwen/Qwen2.5-7B-Instruct (the same for the other Qwen2.5-*-Instruct sizes), tokenizer_config.json "chat_template".
QWEN25 = (
    "{%- if tools %}\n"
    "    {{- '<|im_start|>system\\n' }}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n"
    "    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n"
    "    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n"
    "        {{- \"\\n\" }}\n"
    "        {{- tool | tojson }}\n"
    "    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n"
    "{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or "
    "(message.role == \"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n"
    "        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n"
    "            {{- '\\n' + message.content }}\n"
    "        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n"
    "            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n"
    "            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n"
    "            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n"
    "            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n"
    "        {%- endfor %}\n"
    "        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n"
    "        {%- endif %}\n"
    "        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n"
    "        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n"
    "        {%- endif %}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n"
)

# meta-llama/Meta-Llama-3-8B-Instruct, tokenizer_config.json "chat_template" as updated on the hub in 2024 (the
# first release lacked the add_generation_prompt branch). Note `message['content'] | trim`: the filter binds to the
# content only, before the concatenation.
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
    "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

# THUDM/chatglm3-6b, tokenizer_config.json "chat_template". Uncertain: the hub file has been revised; this is the
# form with [gMASK]sop before the first message and a newline plus one space after each role token, which is how
# ChatGLM3's own build_chat_input lays a conversation out.
CHATGLM3 = (
    "{% for message in messages %}{% if loop.first %}[gMASK]sop<|{{ message['role'] }}|>\n "
    "{{ message['content'] }}{% else %}<|{{ message['role'] }}|>\n {{ message['content'] }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# meta-llama/Llama-2-7b-chat-hf, tokenizer_config.json "chat_template" (the form without a default system prompt).
LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"
)

# Qwen/Qwen2-7B-Instruct's template, laid out on indented lines (so trim_blocks and lstrip_blocks matter; the
# rendered text is Qwen2's), with the assistant turn's content, <|im_end|> and the newline after it in a
# {% generation %} block (HF's marker for return_assistant_tokens_mask). The marked span is exactly what the
# template writes after the generation prompt '<|im_start|>assistant\n', so the prefix-rendering method of
# ChatTemplate must find the same tokens.
QWEN2_GENERATION = (
    "{% for message in messages %}\n"
    "    {% if loop.first and messages[0]['role'] != 'system' %}\n"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}\n"
    "    {% endif %}\n"
    "    {% if message['role'] == 'assistant' %}\n"
    "{{ '<|im_start|>assistant\\n' -}}\n"
    "        {% generation %}\n"
    "{{ message['content'] + '<|im_end|>' + '\\n' -}}\n"
    "        {% endgeneration %}\n"
    "    {% else %}\n"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}\n"
    "    {% endif %}\n"
    "{% endfor %}\n"
    "{% if add_generation_prompt %}\n"
    "{{ '<|im_start|>assistant\\n' -}}\n"
    "{% endif %}\n"
)

# Ours: Jinja2's whitespace control where Jinjava's differs (a block tag in mid-line keeps the spaces before it,
# {%+ and +%}, comments, raw blocks, a '{' left before a tag by {%-), then the Python string methods and filters HF
# templates use, with the edge cases where Python differs from Java (strip of non-breaking and ideographic spaces
# but not of control characters, split keeping empty fields, split without a separator dropping them, maxsplit,
# tuples for startswith), tojson with and without indent, and raise_exception. Each turn is written the same
# whatever follows it, so the prefix-rendering method applies.
PYTHON_STRINGS = (
    "{#- a comment, dropped with the white space around it -#}\n"
    "{{- 'whitespace:' }} {% if true %}[the space before a mid-line tag stays]{% endif %}\n"
    "    {%+ if true %}[a plus sign keeps the indent]{% endif +%}\n"
    "    {% if true %}[lstrip_blocks drops the indent, trim_blocks the newline]{% endif %}\n"
    "{% raw %}[raw: {{ not evaluated }} {% if %}]{% endraw %}\n"
    "x{ {%- if true %}[a brace before a tag]{% endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if message.role not in ['system', 'user', 'assistant'] %}\n"
    "        {{- raise_exception('Unknown role: ' + message.role) }}\n"
    "    {%- endif %}\n"
    "    {%- set c = message.content %}\n"
    "    {{- '<' + message.role.upper() + '>' }}\n"
    "    {{- '[' + c.strip() + '][' + c.lstrip() + '][' + c.rstrip() + '][' + c.strip('*# ') + ']' }}\n"
    "    {{- '[' + c.lstrip('*') + '][' + c.rstrip('!') + '][' + c | trim + ']' }}\n"
    "    {%- if c.startswith('Q:') %}{{- 'question:' + c[2:].strip() }}{% endif %}\n"
    "    {%- if c.endswith(('?', '!')) %}{{- '(ends with ? or !)' }}{% endif %}\n"
    "    {%- for word in c.split() %}{{- '{' + word + '}' }}{% endfor %}\n"
    "    {%- for field in c.split(',') %}{{- '|' + field }}{% endfor %}\n"
    "    {{- '#' + c.split(',', 1)[0] + '#' + c.split(',')[-1] + '#' + c.split(None, 1)[-1] + '#' }}\n"
    "    {{- c.replace(',', ';').lower() + c.replace(' ', '_', 2) }}\n"
    "    {{- message | tojson }}\n"
    "    {{- message | tojson(indent=2) }}\n"
    "    {{- '\\n' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<ASSISTANT>' }}\n"
    "{%- endif %}\n"
)

# ---------------------------------------------------------------------------------------------------------------
# Conversations
# ---------------------------------------------------------------------------------------------------------------


def msg(role, content):
    return {"role": role, "content": content}


SYSTEM_MULTI_TURN = [
    msg("system", "You are a terse assistant."),
    msg("user", "What is the capital of France?"),
    msg("assistant", "Paris."),
    msg("user", "And of Italy?"),
    msg("assistant", "Rome, since 1871."),
]
NO_SYSTEM = [
    msg("user", "Hello there!"),
    msg("assistant", "Hi! How can I help you today?"),
    msg("user", "Tell me a joke about whales."),
    msg("assistant", "Why do whales sing? Because they cannot talk under water."),
]
SINGLE_USER = [msg("user", "Write one word about the sea.")]
UNICODE_WHITESPACE = [
    msg("system", "  Antworte kurz.\n"),
    msg("user", " café, 你好 🙂 naïve  "),
    msg("assistant", "Bonjour! 🐋\n\n"),
    msg("user", "tabs\tand\nnew lines"),
]

COMMON = [
    ("system_multi_turn", SYSTEM_MULTI_TURN),
    ("no_system", NO_SYSTEM),
    ("single_user", SINGLE_USER),
    ("unicode_whitespace", UNICODE_WHITESPACE),
]

# Roles the templates decide about: Qwen2.5 groups consecutive tool turns in one user turn; ChatGLM3 writes any
# role as <|role|>.
QWEN_TOOL_TURNS = [
    msg("user", "What is the weather in Paris and in Rome?"),
    msg("assistant", "I will look both up."),
    msg("tool", "{\"city\": \"Paris\", \"celsius\": 21}"),
    msg("tool", "{\"city\": \"Rome\", \"celsius\": 27}"),
    msg("assistant", "Paris is at 21 and Rome at 27 degrees."),
]
GLM_OBSERVATION = [
    msg("system", "You can call tools."),
    msg("user", "Weather in Paris?"),
    msg("assistant", "get_weather(city='Paris')"),
    msg("observation", "{\"celsius\": 21}"),
    msg("assistant", "It is 21 degrees in Paris."),
]
STRINGS = [
    msg("system", "  ** Be brief! **\u00a0\u3000"),
    msg("user", "Q:  how, exactly,  does a\twhale,sing?\x01"),
    msg("assistant", "*** By  pushing air, through its nasal,,, passages!!"),
]
NOT_ALTERNATING = [msg("user", "one"), msg("user", "two")]
UNKNOWN_ROLE = [msg("user", "hi"), msg("narrator", "Meanwhile...")]


# (name, template, tokenizer spec, extra conversations, conversations that must raise, where the template is saved)
SPECS = [
    dict(name="qwen2.5", template=QWEN25, special=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
         config=dict(eos_token="<|im_end|>", pad_token="<|endoftext|>"), bos_post=None,
         extra=[("tool_turns", QWEN_TOOL_TURNS)], errors=[], template_in_config=True),
    dict(name="llama3", template=LLAMA3,
         special=["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
         config=dict(bos_token="<|begin_of_text|>", eos_token="<|eot_id|>"), bos_post="<|begin_of_text|>",
         extra=[], errors=[], template_in_config=True, bos_as_object=True),
    dict(name="chatglm3", template=CHATGLM3,
         special=["<unk>", "</s>", "[MASK]", "[gMASK]", "[sMASK]", "sop", "eop",
                  "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"],
         config=dict(eos_token="</s>", unk_token="<unk>", pad_token="<unk>"), bos_post=None,
         extra=[("observation_role", GLM_OBSERVATION)], errors=[], template_in_config=True),
    dict(name="llama2", template=LLAMA2, special=["<unk>", "<s>", "</s>"],
         config=dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>"), bos_post="<s>",
         extra=[], errors=[("not_alternating", NOT_ALTERNATING)], template_in_config=True, bos_as_object=True),
    dict(name="qwen2-generation", template=QWEN2_GENERATION, special=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
         config=dict(eos_token="<|im_end|>", pad_token="<|endoftext|>"), bos_post=None,
         extra=[("tool_role", QWEN_TOOL_TURNS)], errors=[], template_in_config=False),
    dict(name="python-strings", template=PYTHON_STRINGS, special=["<unk>", "<s>", "</s>"],
         config=dict(bos_token="<s>", eos_token="</s>", unk_token="<unk>"), bos_post=None,
         extra=[("strings", STRINGS)], errors=[("unknown_role", UNKNOWN_ROLE)], template_in_config=False),
]

VOCAB_SIZE = 512


def corpus():
    """Text the BPE merges are learnt from: every message and the templates' fixed strings."""
    texts = []
    for conv in [c for _, c in COMMON] + [QWEN_TOOL_TURNS, GLM_OBSERVATION, STRINGS]:
        texts.extend(m["content"] for m in conv)
        texts.extend(m["role"] for m in conv)
    texts += ["You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
              "You are a helpful assistant.", "system user assistant tool", "<tool_response>", "</tool_response>"]
    return texts * 4


def build_tokenizer(special, bos_post):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=special, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    if bos_post is not None:
        # as Llama's tokenizer.json: add_special_tokens=True puts BOS first (the chat path must not add a second)
        bos_id = tok.token_to_id(bos_post)
        tok.post_processor = processors.TemplateProcessing(single=f"{bos_post} $A", pair=f"{bos_post} $A {bos_post} $B",
                                                           special_tokens=[(bos_post, bos_id)])
    return tok


def write_dir(spec, out_dir):
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    tok = build_tokenizer(spec["special"], spec["bos_post"])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, chat_template=spec["template"], **spec["config"])
    fast.save_pretrained(out_dir)
    cfg_path = os.path.join(out_dir, "tokenizer_config.json")
    with open(cfg_path, encoding="utf-8") as f:
        cfg = json.load(f)
    jinja_path = os.path.join(out_dir, "chat_template.jinja")
    if spec["template_in_config"]:
        # as the model ships it: the template is a string in tokenizer_config.json
        os.remove(jinja_path)
        cfg["chat_template"] = spec["template"]
    if spec.get("bos_as_object"):
        # as older tokenizer_config.json files write special tokens
        cfg["bos_token"] = {"__type": "AddedToken", "content": cfg["bos_token"], "lstrip": False,
                            "normalized": False, "rstrip": False, "single_word": False}
    with open(cfg_path, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")
    return PreTrainedTokenizerFast.from_pretrained(out_dir)


def make_cases(spec, tok):
    has_generation = "{% generation" in spec["template"] or "{%- generation" in spec["template"]
    assert tok.chat_template == spec["template"], "the re-loaded tokenizer has another template"
    cases = []
    for conv_name, conv in COMMON + spec["extra"]:
        for add_gen in (False, True):
            text = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=add_gen)
            out = tok.apply_chat_template(conv, tokenize=True, add_generation_prompt=add_gen, return_dict=True,
                                          return_assistant_tokens_mask=has_generation)
            ids = list(out["input_ids"])
            assert ids == tok(text, add_special_tokens=False)["input_ids"]
            case = {"name": f"{conv_name}{'_generation_prompt' if add_gen else ''}", "messages": conv,
                    "add_generation_prompt": add_gen, "text": text, "ids": ids}
            if has_generation:
                case["assistant_masks"] = list(out["assistant_masks"])
                assert any(case["assistant_masks"]) == any(m["role"] == "assistant" for m in conv)
            cases.append(case)
    for conv_name, conv in spec["errors"]:
        try:
            tok.apply_chat_template(conv, tokenize=False)
        except jinja2.exceptions.TemplateError as e:
            cases.append({"name": conv_name, "messages": conv, "add_generation_prompt": False, "error": str(e)})
        else:
            raise AssertionError(f"{spec['name']}: {conv_name} rendered without an error")
    return has_generation, cases


def cases_json(doc):
    """The document with one case a line (the token id lists would otherwise take a line per number)."""
    head = {k: v for k, v in doc.items() if k != "cases"}
    lines = [json.dumps(head, indent=1, ensure_ascii=False)[:-2] + ",", ' "cases": [']
    lines += ["  " + json.dumps(c, ensure_ascii=False) + ("," if i + 1 < len(doc["cases"]) else "")
              for i, c in enumerate(doc["cases"])]
    lines += [" ]", "}", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    args = ap.parse_args()
    versions = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "jinja2": jinja2.__version__, "python": sys.version.split()[0]}
    os.makedirs(args.out, exist_ok=True)
    for spec in SPECS:
        out_dir = os.path.join(args.out, spec["name"])
        tok = write_dir(spec, out_dir)
        has_generation, cases = make_cases(spec, tok)
        doc = {"versions": versions, "template_source": "chat_template in tokenizer_config.json"
               if spec["template_in_config"] else "chat_template.jinja",
               "has_generation_blocks": has_generation, "cases": cases}
        with open(os.path.join(out_dir, "cases.json"), "w", encoding="utf-8") as f:
            f.write(cases_json(doc))
        print(f"{spec['name']}: {len(cases)} cases, vocabulary {len(tok)}")


if __name__ == "__main__":
    main()
