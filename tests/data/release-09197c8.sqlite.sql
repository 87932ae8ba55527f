-- The database the first commits of round 1 on main (de3d2d1 to 09197c8: 1a09719's tables and one more
-- column, jobs.polls) left behind, made by commit 09197c8's own code: a worktree of 09197c8 ran the script
-- in the header of release-1a09719.sqlite.sql (with 1a09719's virtualenv and that worktree first on
-- PYTHONPATH) with two lines changed for what 09197c8 lacks:
--     store.apply_status(s, job.id, st(job_id, phase, word), now, now + INTERVAL, render_change,
--                        lambda j: messages.recovered(job_view(j)))  # in result(): no apply_results yet
--     s.add(store.Secret(key="epm-demo:refresh_token", value="rotated-by-09197c8"))  # its Store.put_secret, inline
-- then this file is `sqlite3`'s iterdump of the result (these comment lines added). The same rows as
-- release-1a09719.sqlite.sql, with each job's poll count. History: never regenerate it from newer code.
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
	polls INTEGER NOT NULL, 
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
INSERT INTO "jobs" VALUES(1,'fusion-demo','5201','GL Import','running','RUNNING',NULL,NULL,'[]','[]',1,1765000090.0,1,0,NULL,NULL,NULL,0,2080360001.0,1765000060.0,1765000060.0,1765000000.0);
INSERT INTO "jobs" VALUES(2,'fusion-demo','5203','FA Depr','succeeded','SUCCEEDED',NULL,NULL,'[]','[]',0,1765000050.0,1,0,NULL,NULL,NULL,0,2080360002.0,1765000020.0,1765000030.0,1765000002.0);
INSERT INTO "jobs" VALUES(3,'fusion-demo','5204','AR Aging','running','RUNNING',NULL,NULL,'[]','[]',0,1765000070.0,0,0,NULL,NULL,NULL,0,2080360040.0,1765000040.0,1765000040.0,1765000040.0);
INSERT INTO "jobs" VALUES(4,'fusion-demo','5202','AP Close','running','RUNNING',NULL,NULL,'[]','[]',1,1765000100.0,0,0,NULL,NULL,NULL,0,2080360070.0,1765000070.0,1765000070.0,1765000070.0);
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
INSERT INTO "secrets" VALUES('epm-demo:refresh_token','rotated-by-09197c8');
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
CREATE INDEX ix_watches_channel ON watches (channel, active);
CREATE INDEX ix_watches_job ON watches (job_pk, active);
CREATE INDEX ix_state_changes_job_pk ON state_changes (job_pk);
CREATE INDEX ix_outbox_watch_id ON outbox (watch_id);
CREATE INDEX ix_outbox_due ON outbox (next_attempt_at);
COMMIT;
