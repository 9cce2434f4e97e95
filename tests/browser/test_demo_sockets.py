"""A demo's websocket, driven from a real browser with junk: every malformed message gets an
error and the socket stays open; only a frame past the server's hard limit closes it, with a
close frame that says why."""

from __future__ import annotations

from playwright.sync_api import expect

# Opens the firewall demo's socket, sends each frame, and collects what comes back until a
# valid start has been answered; resolves with the replies, the close event if any, and
# whether the socket was still open at the end.
EXCHANGE = """async (frames) => {
  const ws = new WebSocket(`ws://${location.host}/ws/demos/firewall/`);
  const replies = [];
  let closed = null;
  ws.onmessage = (event) => replies.push(JSON.parse(event.data));
  ws.onclose = (event) => { closed = { code: event.code, reason: event.reason }; };
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
  for (const frame of frames) {
    ws.send(frame);
    const want = replies.length + 1;
    const until = Date.now() + 10000;
    while (replies.length < want && !closed && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const open = ws.readyState === WebSocket.OPEN;
  ws.close();
  return { replies, closed, open };
}"""

START = '{"type": "start", "params": {"action": "query", "sql": "SELECT 1"}}'


def test_malformed_messages_get_errors_and_the_socket_stays_open(page, demo_firewall):
    page.goto("/demos/")
    junk = [
        "[" * 1000 + "]" * 1000,
        '{"type": "start", "params": {"action": "query", "sql": ' + "[" * 1000 + "]" * 1000 + "}}",
        '{"type": "stop", "job": [1]}',
        '{"type": "stop", "job": {"$gt": 0}}',
        "x" * (2 * 1024 * 1024),  # past the demos' 64 KB, under the server's hard limit
    ]
    result = page.evaluate(EXCHANGE, [*junk, START])
    assert result["closed"] is None, result["closed"]
    assert result["open"]
    codes = [reply.get("code") for reply in result["replies"][: len(junk)]]
    assert codes == ["bad_json", "bad_json", "bad_message", "bad_message", "too_large"]
    assert result["replies"][len(junk)] == {"type": "started", "job": 1}


def test_a_frame_past_the_hard_limit_is_closed_with_a_reason(page, demo_firewall):
    page.goto("/demos/")
    result = page.evaluate(EXCHANGE, ["x" * (5 * 1024 * 1024)])
    assert result["closed"] is not None
    assert result["closed"]["code"] == 1009  # message too big, not an unexplained 1006
    assert "exceeds" in result["closed"]["reason"]


# Opens status sockets until the server refuses one; keeps the accepted ones open on
# window.__held and resolves with how many it holds.
HOLD_UNTIL_REFUSED = """async () => {
  window.__held = [];
  for (let i = 0; i < 100; i += 1) {
    const ws = new WebSocket(`ws://${location.host}/ws/demos/status/`);
    const refused = await new Promise((done) => {
      ws.onmessage = (event) => done(JSON.parse(event.data).code === "too_many_connections");
      setTimeout(() => done(false), 300);  // accepted: nothing to say until a start
    });
    if (refused) return window.__held.length;
    window.__held.push(ws);
  }
  return -1;
}"""


def test_a_script_with_many_sockets_is_refused_and_a_page_says_why(browser, live_site):
    context = browser.new_context(base_url=live_site)
    script = context.new_page()
    script.goto("/about/")
    held = script.evaluate(HOLD_UNTIL_REFUSED)
    assert 10 <= held < 100  # a dozen tabs' worth fit; the cap holds
    page = context.new_page()
    page.goto("/demos/firewall/")
    connection = page.locator("[data-fw-connection]")
    expect(connection).to_contain_text("close some tabs")
    expect(connection).to_contain_text("retrying in")
    script.evaluate("window.__held.forEach((ws) => ws.close())")
    expect(connection).to_have_attribute("data-state", "up", timeout=40_000)
    context.close()
