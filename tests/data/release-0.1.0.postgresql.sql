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
    cancel_requested_by character varying,
    cancel_requested_at double precision,
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

INSERT INTO public.jobs VALUES (1, 'fusion-demo', '5101', 'GL Import', 'running', 'RUNNING', NULL, NULL, '[]', '[]', true, 1766000090, 0, NULL, NULL, NULL, false, 2081360005, NULL, NULL, 1766000060, 1766000060, 1766000000);
INSERT INTO public.jobs VALUES (2, 'fusion-demo', '5102', 'AP Close', 'running', 'RUNNING', NULL, NULL, '[]', '[]', true, 1766000098.9174635, 0, NULL, NULL, NULL, false, 2081360070, NULL, NULL, 1766000070, 1766000070, 1766000070);
INSERT INTO public.jobs VALUES (3, 'fusion-demo', '5103', 'FA Depr', 'succeeded', 'SUCCEEDED', NULL, NULL, '[]', '[]', false, 1766000110, 0, NULL, NULL, NULL, false, 2081360020, NULL, NULL, 1766000080, 1766000080, 1766000020);


--
-- Data for Name: outbox; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.outbox VALUES (3, 1, 'event', '{"event":"changed","job":{"backend":"fusion-demo","job_id":"5101","name":"GL Import","phase":"running","vendor_status":"RUNNING","progress":null,"message":null,"log_paths":[],"links":[],"checked_at":1766000060.0,"error_text":null},"watcher":"U0001","old_phase":"queued","old_word":"ENQUEUED"}', 1766000060, 0, 1766000060);
INSERT INTO public.outbox VALUES (4, 1, 'update', '{}', 1766000060, 0, 1766000060);
INSERT INTO public.outbox VALUES (5, 2, 'event', '{"event":"changed","job":{"backend":"fusion-demo","job_id":"5101","name":"GL Import","phase":"running","vendor_status":"RUNNING","progress":null,"message":null,"log_paths":[],"links":[],"checked_at":1766000060.0,"error_text":null},"watcher":"U0002","old_phase":"queued","old_word":"ENQUEUED"}', 1766000060, 0, 1766000060);
INSERT INTO public.outbox VALUES (6, 2, 'update', '{}', 1766000060, 0, 1766000060);
INSERT INTO public.outbox VALUES (7, 3, 'parent', '{}', 1766000070, 0, 1766000070);


--
-- Data for Name: secrets; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.secrets VALUES ('epm-demo:refresh_token', 'rotated-by-0.1.0');


--
-- Data for Name: state_changes; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.state_changes VALUES (1, 1, 1766000000, 'queued', 'ENQUEUED', NULL);
INSERT INTO public.state_changes VALUES (2, 1, 1766000060, 'running', 'RUNNING', NULL);
INSERT INTO public.state_changes VALUES (3, 2, 1766000070, 'running', 'RUNNING', NULL);
INSERT INTO public.state_changes VALUES (4, 3, 1766000020, 'running', 'RUNNING', NULL);
INSERT INTO public.state_changes VALUES (5, 3, 1766000080, 'succeeded', 'SUCCEEDED', NULL);


--
-- Data for Name: watches; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.watches VALUES (1, 1, 'C0001', 'U0001', '1766000000.000000', true, NULL, 1766000000, NULL);
INSERT INTO public.watches VALUES (2, 1, 'C0002', 'U0002', '1766000000.000001', true, NULL, 1766000005, NULL);
INSERT INTO public.watches VALUES (3, 2, 'C0001', 'U0001', NULL, true, NULL, 1766000070, NULL);
INSERT INTO public.watches VALUES (4, 3, 'C0001', 'U0001', '1766000000.000002', false, 'finished', 1766000020, 1766000080);


--
-- Name: jobs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.jobs_id_seq', 3, true);


--
-- Name: outbox_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.outbox_id_seq', 10, true);


--
-- Name: state_changes_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.state_changes_id_seq', 5, true);


--
-- Name: watches_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.watches_id_seq', 4, true);


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
-- Name: watches watches_job_pk_channel_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.watches
    ADD CONSTRAINT watches_job_pk_channel_key UNIQUE (job_pk, channel);


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


