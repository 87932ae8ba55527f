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
	cancel_requested_by VARCHAR, 
	cancel_requested_at FLOAT, 
	changed_at FLOAT NOT NULL, 
	checked_at FLOAT NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (backend, job_id)
);
INSERT INTO "jobs" VALUES(1,'fusion-demo','5101','GL Import','running','RUNNING',NULL,NULL,'[]','[]',1,1766000090.0,0,NULL,NULL,NULL,0,2081360005.0,NULL,NULL,1766000060.0,1766000060.0,1766000000.0);
INSERT INTO "jobs" VALUES(2,'fusion-demo','5102','AP Close','running','RUNNING',NULL,NULL,'[]','[]',1,1.76600009572424650194e+09,0,NULL,NULL,NULL,0,2081360070.0,NULL,NULL,1766000070.0,1766000070.0,1766000070.0);
INSERT INTO "jobs" VALUES(3,'fusion-demo','5103','FA Depr','succeeded','SUCCEEDED',NULL,NULL,'[]','[]',0,1766000110.0,0,NULL,NULL,NULL,0,2081360020.0,NULL,NULL,1766000080.0,1766000080.0,1766000020.0);
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
INSERT INTO "outbox" VALUES(1,1,'event','{"event":"changed","job":{"backend":"fusion-demo","job_id":"5101","name":"GL Import","phase":"running","vendor_status":"RUNNING","progress":null,"message":null,"log_paths":[],"links":[],"checked_at":1766000060.0,"error_text":null},"watcher":"U0001","old_phase":"queued","old_word":"ENQUEUED"}',1766000060.0,0,1766000060.0);
INSERT INTO "outbox" VALUES(2,1,'update','{}',1766000060.0,0,1766000060.0);
INSERT INTO "outbox" VALUES(3,2,'event','{"event":"changed","job":{"backend":"fusion-demo","job_id":"5101","name":"GL Import","phase":"running","vendor_status":"RUNNING","progress":null,"message":null,"log_paths":[],"links":[],"checked_at":1766000060.0,"error_text":null},"watcher":"U0002","old_phase":"queued","old_word":"ENQUEUED"}',1766000060.0,0,1766000060.0);
INSERT INTO "outbox" VALUES(4,2,'update','{}',1766000060.0,0,1766000060.0);
INSERT INTO "outbox" VALUES(5,3,'parent','{}',1766000070.0,0,1766000070.0);
CREATE TABLE secrets (
	"key" VARCHAR NOT NULL, 
	value VARCHAR NOT NULL, 
	PRIMARY KEY ("key")
);
INSERT INTO "secrets" VALUES('epm-demo:refresh_token','rotated-by-0.1.0');
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
INSERT INTO "state_changes" VALUES(1,1,1766000000.0,'queued','ENQUEUED',NULL);
INSERT INTO "state_changes" VALUES(2,1,1766000060.0,'running','RUNNING',NULL);
INSERT INTO "state_changes" VALUES(3,2,1766000070.0,'running','RUNNING',NULL);
INSERT INTO "state_changes" VALUES(4,3,1766000020.0,'running','RUNNING',NULL);
INSERT INTO "state_changes" VALUES(5,3,1766000080.0,'succeeded','SUCCEEDED',NULL);
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
	UNIQUE (job_pk, channel), 
	FOREIGN KEY(job_pk) REFERENCES jobs (id)
);
INSERT INTO "watches" VALUES(1,1,'C0001','U0001','1766000000.000000',1,NULL,1766000000.0,NULL);
INSERT INTO "watches" VALUES(2,1,'C0002','U0002','1766000000.000001',1,NULL,1766000005.0,NULL);
INSERT INTO "watches" VALUES(3,2,'C0001','U0001',NULL,1,NULL,1766000070.0,NULL);
INSERT INTO "watches" VALUES(4,3,'C0001','U0001','1766000000.000002',0,'finished',1766000020.0,1766000080.0);
CREATE INDEX ix_jobs_due ON jobs (polling, next_poll_at);
CREATE INDEX ix_watches_job ON watches (job_pk, active);
CREATE INDEX ix_watches_channel ON watches (channel, active);
CREATE INDEX ix_state_changes_job_pk ON state_changes (job_pk);
CREATE INDEX ix_outbox_watch_id ON outbox (watch_id);
CREATE INDEX ix_outbox_due ON outbox (next_attempt_at);
COMMIT;
