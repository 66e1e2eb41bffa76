// collie chat: streams POST /v1/chat/completions (server-sent events) into the conversation. No dependencies.
"use strict";

const $ = (id) => document.getElementById(id);
const turns = [];            // the finished turns: {role, content}
let modelName = "collie";
let running = null;            // the AbortController of the request in flight

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

function showError(text) {
  $("error").textContent = text;
  $("error").hidden = !text;
}

/** The message of an error answer (OpenAI's {"error": {"message"}}), or the status line. */
async function errorOf(res) {
  try {
    const body = await res.json();
    if (body && body.error && body.error.message) return res.status + ": " + body.error.message;
  } catch (e) { /* not JSON */ }
  return res.status + " " + res.statusText;
}

async function loadModel() {
  try {
    const res = await fetch("/v1/models", { headers: headers() });
    if (res.status === 401) {
      $("key-row").hidden = false;
      $("model-name").textContent = "(needs the API key)";
      if ($("api-key").value) showError(await errorOf(res));
      return;
    }
    if (!res.ok) throw new Error(await errorOf(res));
    modelName = (await res.json()).data[0].id;
    $("model-name").textContent = modelName;
    showError("");
  } catch (e) {
    showError("Cannot list the models: " + e.message);
  }
}

function addMessage(role, text) {
  const li = document.createElement("li");
  li.className = "msg " + role;
  const who = document.createElement("span");
  who.className = "role";
  who.textContent = role;
  const body = document.createElement("div");
  body.className = "text";
  body.textContent = text;
  li.append(who, body);
  $("messages").append(li);
  li.scrollIntoView({ block: "end" });
  return li;
}

function note(li, text) {
  const n = document.createElement("span");
  n.className = "note";
  n.textContent = text;
  li.append(n);
}

/** The request's settings from the side panel; an empty field is left to the server's default. */
function settings() {
  const out = {};
  const put = (name, id, parse) => {
    const v = parse($(id).value);
    if ($(id).value.trim() !== "" && !Number.isNaN(v)) out[name] = v;
  };
  put("temperature", "temperature", parseFloat);
  put("top_p", "top-p", parseFloat);
  put("max_tokens", "max-tokens", (s) => parseInt(s, 10));
  put("seed", "seed", (s) => parseInt(s, 10));
  return out;
}

function setRunning(controller) {
  running = controller;
  $("send").disabled = controller !== null;
  $("stop").disabled = controller === null;
  $("messages").setAttribute("aria-busy", String(controller !== null));   // read the answer once it is whole
}

/** Reads the event stream, calling onEvent with each data object; resolves at [DONE]. */
async function readEvents(body, onEvent) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) throw new Error("the stream ended before [DONE]");
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data: ")) continue;     // ": keep-alive" comments
        const data = line.slice(6);
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

async function send(prompt) {
  showError("");
  const system = $("system").value.trim();
  const user = { role: "user", content: prompt };
  const messages = (system ? [{ role: "system", content: system }] : []).concat(turns, [user]);
  const userLi = addMessage("user", prompt);
  const li = addMessage("assistant", "");
  const text = li.querySelector(".text");
  li.dataset.state = "streaming";
  const controller = new AbortController();
  setRunning(controller);
  const started = performance.now();
  let finish = null;
  let usage = null;
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify(Object.assign({ model: modelName, messages, stream: true,
        stream_options: { include_usage: true } }, settings())),
    });
    if (!res.ok) throw new Error(await errorOf(res));
    await readEvents(res.body, (chunk) => {
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices && chunk.choices[0];
      if (!choice) return;
      if (choice.delta && choice.delta.content) {
        text.textContent += choice.delta.content;
        li.scrollIntoView({ block: "end" });
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    });
    li.dataset.state = "done";
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    note(li, (usage ? usage.completion_tokens + " tokens · " : "") + seconds + " s · finish: " + finish);
    turns.push(user, { role: "assistant", content: text.textContent });
  } catch (e) {
    if (e.name === "AbortError") {
      li.dataset.state = "stopped";
      note(li, "stopped");
      turns.push(user, { role: "assistant", content: text.textContent });
    } else {
      controller.abort();     // an error event: let the server cancel the rest
      li.dataset.state = "error";
      userLi.remove();
      li.remove();
      if (!$("prompt").value) $("prompt").value = prompt;
      showError(e.message);
    }
  } finally {
    setRunning(null);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("api-key").value = sessionStorage.getItem("collie-api-key") || "";
  $("api-key").addEventListener("change", () => {
    sessionStorage.setItem("collie-api-key", $("api-key").value.trim());
    loadModel();
  });
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const prompt = $("prompt").value.trim();
    if (!prompt || running) return;
    $("prompt").value = "";
    send(prompt);
  });
  $("prompt").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("stop").addEventListener("click", () => running && running.abort());
  $("new-chat").addEventListener("click", () => {
    if (running) running.abort();
    turns.length = 0;
    $("messages").replaceChildren();
    showError("");
  });
  loadModel();
});
