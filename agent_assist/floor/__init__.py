"""`agent-assist floor`: the supervisors' live page over the shared flag store.

* `settings`: the `[floor]` table of the configuration file (bind address, accounts, proxy header);
* `auth`: sign-in (Argon2id hashes, or a reverse proxy's user header), expiring sessions, CSRF;
* `board`: the live board's state, fed by the event bus (`agent_assist.bus`), without a server;
* `pages`: the HTML, every value from a call or a person escaped;
* `app`: the Starlette app, its server-sent events and its actions (claim, note, outcome).
"""
