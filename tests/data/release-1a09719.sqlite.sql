-- The database jobstatus's first release on main (commit 1a09719, the round-1 code, before
-- jobs.cancel_requested_by/at and the one-watch-per-job-and-channel constraint) left behind, made by that
-- commit's own code: a worktree of 1a09719 with its own virtualenv (`pip install -e .`) ran the script
-- below, which calls its `Store.create_schema()` and store functions at fixed times from T1 = 1765000000
-- (2025-12-06 05:46:40 UTC), then this file is `sqlite3`'s iterdump of the result (these comment lines
-- added). History: never regenerate it from newer code. tests/data/README.md says what it holds.
--
-- import random, sqlite3, sys
-- random.seed(1)
-- from sqlmodel import Session
-- from bot import store, messages
-- from bot.backends.base import JobStatus
-- from bot.backends.states import Phase
-- from bot.notifier import job_view
-- T1, TEN_YEARS, INTERVAL = 1_765_000_000.0, 10 * 365 * 86400, 30.0
-- db = store.Store(f"sqlite:///{sys.argv[1]}")
-- db.create_schema()
-- ts_seq = iter(f"{int(T1)}.{n:06d}" for n in range(100))  # what a fake Slack whose clock stands at T1 hands out
-- def st(job_id, phase, word, name=None):
--     return JobStatus(job_id=job_id, phase=phase, vendor_status=word, name=name)
-- def watch(s, job_id, phase, word, name, channel, user, now):
--     w, job, created = store.create_watch(s, "fusion-demo", st(job_id, phase, word, name), channel, user,
--                                          now=now, interval=INTERVAL, watch_timeout=TEN_YEARS, first_reply=None)
--     s.flush()
--     return w
-- def deliver(s, now):  # what the notifier did: claim each owed message, then record it sent
--     for m in store.pending(s, now):
--         store.claim(s, m.id)
--         store.sent(s, m.id, next(ts_seq) if m.kind == "parent" else None)
-- def render_change(job, w, old_phase, old_word):
--     return messages.change(job_view(job), watcher=w.user_id, old_phase=old_phase, old_word=old_word)
-- def result(s, job_id, phase, word, now):
--     job = store.find_job(s, "fusion-demo", job_id)
--     store.apply_results(s, [(job.id, st(job_id, phase, word), now, now + INTERVAL, False)], render_change,
--                         lambda j: messages.recovered(job_view(j)))
-- with Session(db.engine) as s:
--     watch(s, "5201", Phase.QUEUED, "WAIT", "GL Import", "C0001", "U0001", T1); deliver(s, T1)
--     watch(s, "5201", Phase.QUEUED, "WAIT", "GL Import", "C0002", "U0002", T1 + 1); deliver(s, T1 + 1)
--     watch(s, "5203", Phase.RUNNING, "RUNNING", "FA Depr", "C0001", "U0001", T1 + 2); deliver(s, T1 + 2)
--     result(s, "5203", Phase.SUCCEEDED, "SUCCEEDED", T1 + 20); deliver(s, T1 + 20)
--     watch(s, "5203", Phase.SUCCEEDED, "SUCCEEDED", "FA Depr", "C0001", "U0003", T1 + 30); deliver(s, T1 + 30)
--     w5 = watch(s, "5204", Phase.RUNNING, "RUNNING", "AR Aging", "C0002", "U0002", T1 + 40); deliver(s, T1 + 40)
--     store.end_watch(s, w5, "stopped", T1 + 45, messages.note(
--         ":octagonal_sign: Stopped watching (by <@U0002>). Press *Rewatch* to follow it again."))
--     result(s, "5201", Phase.RUNNING, "RUNNING", T1 + 60)
--     watch(s, "5202", Phase.RUNNING, "RUNNING", "AP Close", "C0001", "U0001", T1 + 70)
--     store.put_secret(s, "epm-demo:refresh_token", "rotated-by-1a09719")
--     s.commit()
-- db.close()
-- print("\n".join(sqlite3.connect(sys.argv[1]).iterdump()))
BEGIN TRANSACTION;
CREATE TABLE jobs (
	id INTEGER NOT NULL, 
	backend VARCHAR NOT NULL, 
	job_id VARCHAR NOT NULL, 
	name VARCHAR, 
	phase VARCHAR NOT NULL, 
	vendor_status VARCHAR NOT NULL, 
	progress INTEGER, 
	message VARCHAR, 
	log_paths VARCHAR NOT NULL, 
	links VARCHAR NOT NULL, 
	polling BOOLEAN NOT NULL, 
	next_poll_at FLOAT NOT NULL, 
	errors INTEGER NOT NULL, 
	error_kind VARCHAR, 
	error_text VARCHAR, 
	error_since FLOAT, 
	outage_noted BOOLEAN NOT NULL, 
	timeout_at FLOAT, 
	changed_at FLOAT NOT NULL, 
	checked_at FLOAT NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (backend, job_id)
);
INSERT INTO "jobs" VALUES(1,'fusion-demo','5201','GL Import','running','RUNNING',NULL,NULL,'[]','[]',1,1765000090.0,0,NULL,NULL,NULL,0,2080360001.0,1765000060.0,1765000060.0,1765000000.0);
INSERT INTO "jobs" VALUES(2,'fusion-demo','5203','FA Depr','succeeded','SUCCEEDED',NULL,NULL,'[]','[]',0,1765000050.0,0,NULL,NULL,NULL,0,2080360002.0,1765000020.0,1765000030.0,1765000002.0);
INSERT INTO "jobs" VALUES(3,'fusion-demo','5204','AR Aging','running','RUNNING',NULL,NULL,'[]','[]',0,1.76500006645661926272e+09,0,NULL,NULL,NULL,0,2080360040.0,1765000040.0,1765000040.0,1765000040.0);
INSERT INTO "jobs" VALUES(4,'fusion-demo','5202','AP Close','running','RUNNING',NULL,NULL,'[]','[]',1,1.76500008882603549959e+09,0,NULL,NULL,NULL,0,2080360070.0,1765000070.0,1765000070.0,1765000070.0);
CREATE TABLE outbox (
	id INTEGER NOT NULL, 
	watch_id INTEGER NOT NULL, 
	kind VARCHAR NOT NULL, 
	payload VARCHAR NOT NULL, 
	created_at FLOAT NOT NULL, 
	attempts INTEGER NOT NULL, 
	next_attempt_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(watch_id) REFERENCES watches (id)
);
INSERT INTO "outbox" VALUES(2,5,'reply','{"text":":octagonal_sign: Stopped watching (by <@U0002>). Press *Rewatch* to follow it again.","blocks":[{"type":"section","text":{"type":"mrkdwn","text":":octagonal_sign: Stopped watching (by <@U0002>). Press *Rewatch* to follow it again."}}],"broadcast":false}',1765000045.0,0,1765000045.0);
INSERT INTO "outbox" VALUES(3,5,'update','{}',1765000045.0,0,1765000045.0);
INSERT INTO "outbox" VALUES(4,1,'reply','{"text":"fusion-demo job 5201: running","blocks":[{"type":"section","text":{"type":"mrkdwn","text":":arrows_counterclockwise: *running* (was queued (WAIT))"}}],"broadcast":false}',1765000060.0,0,1765000060.0);
INSERT INTO "outbox" VALUES(5,1,'update','{}',1765000060.0,0,1765000060.0);
INSERT INTO "outbox" VALUES(6,2,'reply','{"text":"fusion-demo job 5201: running","blocks":[{"type":"section","text":{"type":"mrkdwn","text":":arrows_counterclockwise: *running* (was queued (WAIT))"}}],"broadcast":false}',1765000060.0,0,1765000060.0);
INSERT INTO "outbox" VALUES(7,2,'update','{}',1765000060.0,0,1765000060.0);
INSERT INTO "outbox" VALUES(8,6,'parent','{}',1765000070.0,0,1765000070.0);
CREATE TABLE secrets (
	"key" VARCHAR NOT NULL, 
	value VARCHAR NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "secrets" VALUES('epm-demo:refresh_token','rotated-by-1a09719');
CREATE TABLE state_changes (
	id INTEGER NOT NULL, 
	job_pk INTEGER NOT NULL, 
	at FLOAT NOT NULL, 
	phase VARCHAR NOT NULL, 
	vendor_status VARCHAR NOT NULL, 
	message VARCHAR, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_pk) REFERENCES jobs (id)
);
INSERT INTO "state_changes" VALUES(1,1,1765000000.0,'queued','WAIT',NULL);
INSERT INTO "state_changes" VALUES(2,2,1765000002.0,'running','RUNNING',NULL);
INSERT INTO "state_changes" VALUES(3,2,1765000020.0,'succeeded','SUCCEEDED',NULL);
INSERT INTO "state_changes" VALUES(4,3,1765000040.0,'running','RUNNING',NULL);
INSERT INTO "state_changes" VALUES(5,1,1765000060.0,'running','RUNNING',NULL);
INSERT INTO "state_changes" VALUES(6,4,1765000070.0,'running','RUNNING',NULL);
CREATE TABLE watches (
	id INTEGER NOT NULL, 
	job_pk INTEGER NOT NULL, 
	channel VARCHAR NOT NULL, 
	user_id VARCHAR NOT NULL, 
	parent_ts VARCHAR, 
	active BOOLEAN NOT NULL, 
	ended_reason VARCHAR, 
	created_at FLOAT NOT NULL, 
	ended_at FLOAT, 
	PRIMARY KEY (id), 
	FOREIGN KEY(job_pk) REFERENCES jobs (id)
);
INSERT INTO "watches" VALUES(1,1,'C0001','U0001','1765000000.000000',1,NULL,1765000000.0,NULL);
INSERT INTO "watches" VALUES(2,1,'C0002','U0002','1765000000.000001',1,NULL,1765000001.0,NULL);
INSERT INTO "watches" VALUES(3,2,'C0001','U0001','1765000000.000002',0,'finished',1765000002.0,1765000020.0);
INSERT INTO "watches" VALUES(4,2,'C0001','U0003','1765000000.000003',0,'finished',1765000030.0,1765000030.0);
INSERT INTO "watches" VALUES(5,3,'C0002','U0002','1765000000.000004',0,'stopped',1765000040.0,1765000045.0);
INSERT INTO "watches" VALUES(6,4,'C0001','U0001',NULL,1,NULL,1765000070.0,NULL);
CREATE INDEX ix_jobs_due ON jobs (polling, next_poll_at);
CREATE INDEX ix_watches_job ON watches (job_pk, active);
CREATE INDEX ix_watches_channel ON watches (channel, active);
CREATE INDEX ix_state_changes_job_pk ON state_changes (job_pk);
CREATE INDEX ix_outbox_due ON outbox (next_attempt_at);
CREATE INDEX ix_outbox_watch_id ON outbox (watch_id);
COMMIT;
