-- The database jobstatus's first release on main (commit 1a09719, the round-1 code) left behind on
-- PostgreSQL 15: the same rows as release-1a09719.sqlite.sql, made by the same script (its header) run by
-- that commit's own code with the database URL of an empty PostgreSQL database in place of the SQLite file
-- (`store.Store(sys.argv[1])`, no iterdump), then `pg_dump --no-owner --no-privileges --inserts` (its
-- `\restrict` lines removed, so any client can load it; these comment lines added). History: never
-- regenerate it from newer code. tests/data/README.md says what it holds.
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: jobs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.jobs (
    id integer NOT NULL,
    backend character varying NOT NULL,
    job_id character varying NOT NULL,
    name character varying,
    phase character varying NOT NULL,
    vendor_status character varying NOT NULL,
    progress integer,
    message character varying,
    log_paths character varying NOT NULL,
    links character varying NOT NULL,
    polling boolean NOT NULL,
    next_poll_at double precision NOT NULL,
    errors integer NOT NULL,
    error_kind character varying,
    error_text character varying,
    error_since double precision,
    outage_noted boolean NOT NULL,
    timeout_at double precision,
    changed_at double precision NOT NULL,
    checked_at double precision NOT NULL,
    created_at double precision NOT NULL
);


--
-- Name: jobs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.jobs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: jobs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.jobs_id_seq OWNED BY public.jobs.id;


--
-- Name: outbox; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.outbox (
    id integer NOT NULL,
    watch_id integer NOT NULL,
    kind character varying NOT NULL,
    payload character varying NOT NULL,
    created_at double precision NOT NULL,
    attempts integer NOT NULL,
    next_attempt_at double precision NOT NULL
);


--
-- Name: outbox_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.outbox_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: outbox_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.outbox_id_seq OWNED BY public.outbox.id;


--
-- Name: secrets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.secrets (
    key character varying NOT NULL,
    value character varying NOT NULL
);


--
-- Name: state_changes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.state_changes (
    id integer NOT NULL,
    job_pk integer NOT NULL,
    at double precision NOT NULL,
    phase character varying NOT NULL,
    vendor_status character varying NOT NULL,
    message character varying
);


--
-- Name: state_changes_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.state_changes_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: state_changes_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.state_changes_id_seq OWNED BY public.state_changes.id;


--
-- Name: watches; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.watches (
    id integer NOT NULL,
    job_pk integer NOT NULL,
    channel character varying NOT NULL,
    user_id character varying NOT NULL,
    parent_ts character varying,
    active boolean NOT NULL,
    ended_reason character varying,
    created_at double precision NOT NULL,
    ended_at double precision
);


--
-- Name: watches_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.watches_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: watches_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.watches_id_seq OWNED BY public.watches.id;


--
-- Name: jobs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs ALTER COLUMN id SET DEFAULT nextval('public.jobs_id_seq'::regclass);


--
-- Name: outbox id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbox ALTER COLUMN id SET DEFAULT nextval('public.outbox_id_seq'::regclass);


--
-- Name: state_changes id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.state_changes ALTER COLUMN id SET DEFAULT nextval('public.state_changes_id_seq'::regclass);


--
-- Name: watches id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.watches ALTER COLUMN id SET DEFAULT nextval('public.watches_id_seq'::regclass);


--
-- Data for Name: jobs; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.jobs VALUES (2, 'fusion-demo', '5203', 'FA Depr', 'succeeded', 'SUCCEEDED', NULL, NULL, '[]', '[]', false, 1765000050, 0, NULL, NULL, NULL, false, 2080360002, 1765000020, 1765000030, 1765000002);
INSERT INTO public.jobs VALUES (3, 'fusion-demo', '5204', 'AR Aging', 'running', 'RUNNING', NULL, NULL, '[]', '[]', false, 1765000066.4566193, 0, NULL, NULL, NULL, false, 2080360040, 1765000040, 1765000040, 1765000040);
INSERT INTO public.jobs VALUES (1, 'fusion-demo', '5201', 'GL Import', 'running', 'RUNNING', NULL, NULL, '[]', '[]', true, 1765000090, 0, NULL, NULL, NULL, false, 2080360001, 1765000060, 1765000060, 1765000000);
INSERT INTO public.jobs VALUES (4, 'fusion-demo', '5202', 'AP Close', 'running', 'RUNNING', NULL, NULL, '[]', '[]', true, 1765000088.8260355, 0, NULL, NULL, NULL, false, 2080360070, 1765000070, 1765000070, 1765000070);


--
-- Data for Name: outbox; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.outbox VALUES (8, 5, 'reply', '{"text":":octagonal_sign: Stopped watching (by <@U0002>). Press *Rewatch* to follow it again.","blocks":[{"type":"section","text":{"type":"mrkdwn","text":":octagonal_sign: Stopped watching (by <@U0002>). Press *Rewatch* to follow it again."}}],"broadcast":false}', 1765000045, 0, 1765000045);
INSERT INTO public.outbox VALUES (9, 5, 'update', '{}', 1765000045, 0, 1765000045);
INSERT INTO public.outbox VALUES (10, 1, 'reply', '{"text":"fusion-demo job 5201: running","blocks":[{"type":"section","text":{"type":"mrkdwn","text":":arrows_counterclockwise: *running* (was queued (WAIT))"}}],"broadcast":false}', 1765000060, 0, 1765000060);
INSERT INTO public.outbox VALUES (11, 1, 'update', '{}', 1765000060, 0, 1765000060);
INSERT INTO public.outbox VALUES (12, 2, 'reply', '{"text":"fusion-demo job 5201: running","blocks":[{"type":"section","text":{"type":"mrkdwn","text":":arrows_counterclockwise: *running* (was queued (WAIT))"}}],"broadcast":false}', 1765000060, 0, 1765000060);
INSERT INTO public.outbox VALUES (13, 2, 'update', '{}', 1765000060, 0, 1765000060);
INSERT INTO public.outbox VALUES (14, 6, 'parent', '{}', 1765000070, 0, 1765000070);


--
-- Data for Name: secrets; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.secrets VALUES ('epm-demo:refresh_token', 'rotated-by-1a09719');


--
-- Data for Name: state_changes; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.state_changes VALUES (1, 1, 1765000000, 'queued', 'WAIT', NULL);
INSERT INTO public.state_changes VALUES (2, 2, 1765000002, 'running', 'RUNNING', NULL);
INSERT INTO public.state_changes VALUES (3, 2, 1765000020, 'succeeded', 'SUCCEEDED', NULL);
INSERT INTO public.state_changes VALUES (4, 3, 1765000040, 'running', 'RUNNING', NULL);
INSERT INTO public.state_changes VALUES (5, 1, 1765000060, 'running', 'RUNNING', NULL);
INSERT INTO public.state_changes VALUES (6, 4, 1765000070, 'running', 'RUNNING', NULL);


--
-- Data for Name: watches; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.watches VALUES (1, 1, 'C0001', 'U0001', '1765000000.000000', true, NULL, 1765000000, NULL);
INSERT INTO public.watches VALUES (2, 1, 'C0002', 'U0002', '1765000000.000001', true, NULL, 1765000001, NULL);
INSERT INTO public.watches VALUES (3, 2, 'C0001', 'U0001', '1765000000.000002', false, 'finished', 1765000002, 1765000020);
INSERT INTO public.watches VALUES (4, 2, 'C0001', 'U0003', '1765000000.000003', false, 'finished', 1765000030, 1765000030);
INSERT INTO public.watches VALUES (5, 3, 'C0002', 'U0002', '1765000000.000004', false, 'stopped', 1765000040, 1765000045);
INSERT INTO public.watches VALUES (6, 4, 'C0001', 'U0001', NULL, true, NULL, 1765000070, NULL);


--
-- Name: jobs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.jobs_id_seq', 4, true);


--
-- Name: outbox_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.outbox_id_seq', 14, true);


--
-- Name: state_changes_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.state_changes_id_seq', 6, true);


--
-- Name: watches_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.watches_id_seq', 6, true);


--
-- Name: jobs jobs_backend_job_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_backend_job_id_key UNIQUE (backend, job_id);


--
-- Name: jobs jobs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.jobs
    ADD CONSTRAINT jobs_pkey PRIMARY KEY (id);


--
-- Name: outbox outbox_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbox
    ADD CONSTRAINT outbox_pkey PRIMARY KEY (id);


--
-- Name: secrets secrets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.secrets
    ADD CONSTRAINT secrets_pkey PRIMARY KEY (key);


--
-- Name: state_changes state_changes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.state_changes
    ADD CONSTRAINT state_changes_pkey PRIMARY KEY (id);


--
-- Name: watches watches_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.watches
    ADD CONSTRAINT watches_pkey PRIMARY KEY (id);


--
-- Name: ix_jobs_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_jobs_due ON public.jobs USING btree (polling, next_poll_at);


--
-- Name: ix_outbox_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_outbox_due ON public.outbox USING btree (next_attempt_at);


--
-- Name: ix_outbox_watch_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_outbox_watch_id ON public.outbox USING btree (watch_id);


--
-- Name: ix_state_changes_job_pk; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_state_changes_job_pk ON public.state_changes USING btree (job_pk);


--
-- Name: ix_watches_channel; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_watches_channel ON public.watches USING btree (channel, active);


--
-- Name: ix_watches_job; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_watches_job ON public.watches USING btree (job_pk, active);


--
-- Name: outbox outbox_watch_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.outbox
    ADD CONSTRAINT outbox_watch_id_fkey FOREIGN KEY (watch_id) REFERENCES public.watches(id);


--
-- Name: state_changes state_changes_job_pk_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.state_changes
    ADD CONSTRAINT state_changes_job_pk_fkey FOREIGN KEY (job_pk) REFERENCES public.jobs(id);


--
-- Name: watches watches_job_pk_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.watches
    ADD CONSTRAINT watches_job_pk_fkey FOREIGN KEY (job_pk) REFERENCES public.jobs(id);


--
-- PostgreSQL database dump complete
--


