"""Drive a real browser (Chromium, headless, through Selenium) through the
platform's JupyterHub as a researcher would: the hub's login page, the
identity provider's login form, the spawn form, JupyterLab.

Prints one JSON object on stdout:
  login          "ok", "refused" (the hub answered 403) or "bad-credentials"
                 (the provider kept its login form)
  user           the hub's user name (from the URL), when logged in
  environments   option values of the spawn form's <select name="environment">
  flavours       option values of the spawn form's <select name="flavour">
  spawned        whether the server started and JupyterLab opened
  spawn_error    the text the hub showed when the spawn failed, else null
  lab_url        the URL of the user's JupyterLab
  home_listing   names in the user's home, read through the server's own
                 contents API with the browser's cookies
  runs           for each --run: {"command", "rc", "output"}, the command run
                 in a JupyterLab terminal of the user's server (the terminals
                 REST API and its websocket, from the page, as JupyterLab does)
Screenshots (PNG) go to --screenshots: NN-<user>-<step>.png. Exit code 0
whenever the JSON was printed; 2 when the browser could not be driven.

Usage: browser.py --hub https://jh-hub --user alice --password PW
                  [--env NAME] [--flavour NAME] [--no-spawn] [--fresh]
                  [--screenshots DIR] [--timeout SECONDS]
                  [--run COMMAND]... [--host-rules "MAP name address,..."]
"""
import argparse
import json
import os
import re
import sys
import tempfile
import time
from urllib.parse import urlparse

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

# Headless on a closed network (see docs: without the background-networking
# flags Chromium floods the network with connections it cannot make).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,900",
]


class Browser:
    def __init__(self, args):
        self.args = args
        self.step = 0
        self.profile = tempfile.mkdtemp(prefix="fedgpu-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = args.chromium
        flags = CHROMIUM_FLAGS + ["--user-data-dir=" + self.profile]
        if args.host_rules:  # names the machine's resolver does not know (the platform's nodes)
            flags.append("--host-resolver-rules=" + args.host_rules)
        for flag in flags:
            options.add_argument(flag)
        # The hub's and the provider's certificates come from test CAs the
        # browser's profile does not know; their chains are checked by the
        # hub host (curl --cacert) in the scenario.
        options.accept_insecure_certs = True
        self.driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
        self.driver.set_page_load_timeout(args.timeout)

    def shot(self, name):
        if not self.args.screenshots:
            return
        os.makedirs(self.args.screenshots, exist_ok=True)
        self.step += 1
        path = os.path.join(self.args.screenshots, "%02d-%s-%s.png" % (self.step, self.args.user, name))
        self.driver.save_screenshot(path)

    def wait(self, condition, timeout=None):
        return WebDriverWait(self.driver, timeout or self.args.timeout, poll_frequency=0.5).until(condition)

    def body_text(self):
        try:
            return self.driver.find_element(By.TAG_NAME, "body").text
        except NoSuchElementException:
            return ""

    def close(self):
        try:
            self.driver.quit()
        except WebDriverException:
            pass


def hub_host(args):
    return urlparse(args.hub).netloc


def run(args, browser, result):
    d = browser.driver
    d.get(args.hub.rstrip("/") + "/hub/login")
    browser.shot("hub-login")
    # The hub's login page: the button that starts the OpenID Connect flow.
    d.find_element(By.CSS_SELECTOR, "a[href*='oauth_login']").click()
    browser.wait(lambda drv: drv.find_elements(By.NAME, "login") or urlparse(drv.current_url).netloc == hub_host(args))
    if urlparse(d.current_url).netloc != hub_host(args):
        browser.shot("provider-login")
        d.find_element(By.NAME, "login").send_keys(args.user)
        d.find_element(By.NAME, "password").send_keys(args.password)
        d.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        browser.wait(lambda drv: urlparse(drv.current_url).netloc == hub_host(args) or drv.find_elements(By.ID, "error"))
    if urlparse(d.current_url).netloc != hub_host(args):
        result["login"] = "bad-credentials"
        browser.shot("provider-refused")
        return
    browser.wait(lambda drv: drv.execute_script("return document.readyState") == "complete")
    text = browser.body_text()
    if re.search(r"\b403\b", d.title) or re.search(r"^\s*403\b", text, re.M):
        result["login"] = "refused"
        result["message"] = text[:500]
        browser.shot("hub-refused")
        return
    result["login"] = "ok"
    # Pages of the hub (services among them) as this user: their address, text and links.
    for n, path in enumerate(args.visit):
        d.get(args.hub.rstrip("/") + path)
        browser.wait(lambda drv: drv.execute_script("return document.readyState") == "complete")
        browser.shot("visit-%d" % n)
        links = [a.get_attribute("href") for a in d.find_elements(By.TAG_NAME, "a")]
        result["visits"].append({"path": path, "url": d.current_url, "title": d.title, "text": browser.body_text(),
                                 "links": [link for link in links if link]})
    if args.visit and args.only_visit:
        return
    # Where the hub lands a logged-in user: /hub/spawn or /hub/home.
    d.get(args.hub.rstrip("/") + "/hub/spawn")
    path = urlparse(d.current_url).path
    if "/user/" in path and args.fresh:  # stop the running server, as the home page's button does
        user = path.split("/user/", 1)[1].split("/", 1)[0]
        d.get(args.hub.rstrip("/") + "/hub/home")
        d.set_script_timeout(90)
        stopped = d.execute_async_script(STOP_JS, user)
        if not stopped:
            raise TimeoutException("the running server of %s did not stop" % user)
        d.get(args.hub.rstrip("/") + "/hub/spawn")
        path = urlparse(d.current_url).path
    if "/user/" in path:  # a server already runs: the hub sends the user there
        result["user"] = path.split("/user/", 1)[1].split("/", 1)[0]
    else:
        browser.wait(lambda drv: drv.find_elements(By.NAME, "flavour") or drv.find_elements(By.NAME, "environment"))
        result["environments"] = [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "select[name=environment] option")]
        result["flavours"] = [o.get_attribute("value") for o in d.find_elements(By.CSS_SELECTOR, "select[name=flavour] option")]
        browser.shot("spawn-form")
        if args.no_spawn:
            return
        if args.env:
            Select(d.find_element(By.NAME, "environment")).select_by_value(args.env)
        if args.flavour:
            Select(d.find_element(By.NAME, "flavour")).select_by_value(args.flavour)
        browser.shot("spawn-form-chosen")
        d.find_element(By.CSS_SELECTOR, "form#spawn_form, form[action*='spawn']").submit()

        def settled(drv):
            p = urlparse(drv.current_url).path
            if "/user/" in p and "/lab" in p:
                return "lab"
            # The spawn form again, with the hub's error (a spawn refused at once).
            if "/spawn-pending/" not in p and "/hub/spawn" in p and any(
                    e.is_displayed() for e in drv.find_elements(By.CSS_SELECTOR, ".spawn-error-msg")):
                return "error"
            t = browser.body_text()
            # The pending page's "Spawn failed: ...", or the hub's error page ("500 : ...").
            if "Spawn failed" in t or re.search(r"^\s*[45]\d\d : ", t, re.M):
                return "error"
            return False

        state = browser.wait(settled, timeout=args.spawn_timeout)
        if state == "error":
            time.sleep(1)  # the pending page fills in its message from the event stream
            result["spawn_error"] = browser.body_text()[:1000]
            browser.shot("spawn-failed")
            return
        path = urlparse(d.current_url).path
        result["user"] = path.split("/user/", 1)[1].split("/", 1)[0]
    result["lab_url"] = d.current_url
    try:
        browser.wait(lambda drv: drv.find_elements(By.CSS_SELECTOR, "#jp-main-dock-panel, .jp-LabShell"), timeout=60)
        result["spawned"] = True
    except TimeoutException:
        result["spawned"] = "/lab" in urlparse(d.current_url).path
    time.sleep(2)  # let JupyterLab draw its launcher before the screenshot
    browser.shot("jupyterlab")
    # The user's home, through the single-user server's contents API.
    d.get("%s/user/%s/api/contents" % (args.hub.rstrip("/"), result["user"]))
    try:
        listing = json.loads(d.find_element(By.TAG_NAME, "pre").text)
    except (NoSuchElementException, ValueError):
        listing = json.loads(browser.body_text() or "{}")
    result["home_listing"] = sorted(item["name"] for item in listing.get("content", []))
    if args.run:
        d.get(result["lab_url"])
        browser.wait(lambda drv: drv.find_elements(By.CSS_SELECTOR, "#jp-main-dock-panel, .jp-LabShell"), timeout=60)
        base = "%s/user/%s" % (args.hub.rstrip("/"), result["user"])
        result["runs"] = [run_in_terminal(browser, base, command) for command in args.run]
        browser.shot("after-commands")


# Stop the user's server through the hub's REST API with the page's session
# (what the home page's "Stop My Server" does); true once the hub says it is gone.
STOP_JS = """
const user = arguments[0], done = arguments[arguments.length - 1];
const xsrf = decodeURIComponent((document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "");
const api = "/hub/api/users/" + user;
const opts = {headers: {"X-XSRFToken": xsrf}, credentials: "same-origin"};
fetch(api + "/server", Object.assign({method: "DELETE"}, opts)).then(() => {
  let tries = 0;
  const check = () => fetch(api, opts).then(r => r.json()).then(u => {
    const servers = u.servers || {};
    if (!servers[""] || (!servers[""].ready && !servers[""].pending)) return done(true);
    if (++tries > 60) return done(false);
    setTimeout(check, 1000);
  }).catch(() => done(false));
  check();
}).catch(() => done(false));
"""


# Run one command in a new terminal of the user's server, from the page (the
# browser's cookies and XSRF token), and collect what the terminal printed
# until the command's end marker with its exit status.
TERMINAL_JS = """
const base = arguments[0], command = arguments[1], marker = arguments[2], done = arguments[arguments.length - 1];
const xsrf = decodeURIComponent((document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "");
const headers = {"X-XSRFToken": xsrf};
fetch(base + "/api/terminals", {method: "POST", headers: headers, credentials: "same-origin"})
  .then(r => r.json())
  .then(term => {
    const ws = new WebSocket(base.replace(/^http/, "ws") + "/terminals/websocket/" + term.name);
    let out = "";
    const finish = (result) => {
      clearTimeout(timer);
      try { ws.close(); } catch (e) {}
      fetch(base + "/api/terminals/" + term.name, {method: "DELETE", headers: headers, credentials: "same-origin"})
        .finally(() => done(result));
    };
    const timer = setTimeout(() => finish({rc: null, output: out}), 60000);
    ws.onopen = () => {
      ws.send(JSON.stringify(["set_size", 50, 250, 900, 1600]));  // no line wrapping
      // The quotes keep the echoed input from matching the markers the shell prints.
      ws.send(JSON.stringify(["stdin", "echo " + marker + '""-BEGIN; ' + command + "; echo " + marker + '""-$?\\r']));
    };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg[0] !== "stdout") return;
      out += msg[1];
      const m = out.match(new RegExp(marker + "-([0-9]+)"));
      if (m) finish({rc: parseInt(m[1], 10), output: out});
    };
    ws.onerror = () => finish({rc: null, output: out + " [websocket error]"});
  })
  .catch(e => done({rc: null, output: "terminal: " + e}));
"""
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def run_in_terminal(browser, base, command):
    marker = "FEDGPU-DONE-%d" % int(time.time() * 1000)
    browser.driver.set_script_timeout(90)
    got = browser.driver.execute_async_script(TERMINAL_JS, base, command, marker)
    output = ANSI.sub("", got.get("output") or "")
    # What the command printed: between the markers as the shell printed them.
    body = output.split(marker + "-BEGIN", 1)[-1]
    body = re.split(marker + r"-[0-9]+", body)[0]
    return {"command": command, "rc": got.get("rc"), "output": body.strip()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--hub", required=True, help="hub URL, e.g. https://jh-hub")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", default=os.environ.get("FEDGPU_TEST_PASSWORD"),
                        help="default: $FEDGPU_TEST_PASSWORD")
    parser.add_argument("--env", help="environment to choose (option value)")
    parser.add_argument("--flavour", help="flavour to choose (option value)")
    parser.add_argument("--no-spawn", action="store_true", help="stop at the spawn form")
    parser.add_argument("--fresh", action="store_true", help="stop the user's running server first, then spawn")
    parser.add_argument("--screenshots", help="directory for PNG screenshots")
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--spawn-timeout", type=float, default=120)
    parser.add_argument("--run", action="append", default=[],
                        help="command to run in a JupyterLab terminal of the started server (repeatable)")
    parser.add_argument("--visit", action="append", default=[],
                        help="after login, open this path of the hub (e.g. /services/usage/); repeatable")
    parser.add_argument("--only-visit", action="store_true", help="stop after the --visit pages")
    parser.add_argument("--host-rules", help="Chromium --host-resolver-rules, e.g. 'MAP fg-gpu1 172.28.71.31'")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    args = parser.parse_args()
    result = {"login": None, "user": None, "environments": [], "flavours": [], "spawned": False,
              "spawn_error": None, "lab_url": None, "home_listing": [], "runs": [], "visits": []}
    try:
        browser = Browser(args)
    except WebDriverException as exc:
        print("cannot start the browser: %s" % exc, file=sys.stderr)
        return 2
    try:
        run(args, browser, result)
    except (TimeoutException, NoSuchElementException) as exc:
        result["error"] = "%s at %s: %s" % (type(exc).__name__, browser.driver.current_url, browser.body_text()[:500])
        try:
            browser.shot("timeout")
        except WebDriverException:
            pass
    finally:
        browser.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
