CREATE TABLE "jids_archive" (
	"jid" varchar(255) NOT NULL,
	"load" jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "jobs_archive" (
	"jid" varchar(255) NOT NULL,
	"fun" text NOT NULL,
	"arg" jsonb NOT NULL,
	"tgt" jsonb NOT NULL,
	"tgt_type" text NOT NULL,
	"user" text NOT NULL,
	"metadata" jsonb,
	"minions" jsonb NOT NULL,
	"missing" jsonb NOT NULL,
	"expected" integer NOT NULL,
	"returned" integer NOT NULL,
	"failed" integer NOT NULL,
	"start_time" timestamp with time zone NOT NULL,
	"end_time" timestamp with time zone,
	"published_seq" bigint
);
--> statement-breakpoint
CREATE TABLE "salt_events_archive" (
	"id" bigint NOT NULL,
	"tag" varchar(255) NOT NULL,
	"data" jsonb NOT NULL,
	"alter_time" timestamp with time zone,
	"master_id" varchar(255) NOT NULL
);
--> statement-breakpoint
CREATE TABLE "salt_returns_archive" (
	"fun" varchar(50) NOT NULL,
	"jid" varchar(255) NOT NULL,
	"return" jsonb NOT NULL,
	"id" varchar(255) NOT NULL,
	"success" varchar(10) NOT NULL,
	"full_ret" jsonb NOT NULL,
	"alter_time" timestamp with time zone
);
--> statement-breakpoint
DROP INDEX "idx_jobs_start_time";--> statement-breakpoint
CREATE INDEX "idx_jids_archive_jid" ON "jids_archive" USING btree ("jid");--> statement-breakpoint
CREATE INDEX "idx_jobs_archive_jid" ON "jobs_archive" USING btree ("jid");--> statement-breakpoint
CREATE INDEX "idx_salt_returns_archive_jid" ON "salt_returns_archive" USING btree ("jid");--> statement-breakpoint
CREATE INDEX "idx_jobs_fun_pattern" ON "jobs" USING btree ("fun" text_pattern_ops);--> statement-breakpoint
CREATE INDEX "idx_jobs_tgt" ON "jobs" USING gin ("tgt");--> statement-breakpoint
CREATE INDEX "idx_jobs_metadata" ON "jobs" USING gin ("metadata");--> statement-breakpoint
CREATE INDEX "idx_procs_id_state" ON "procs" USING btree ("id","state");--> statement-breakpoint
CREATE INDEX "idx_jobs_start_time" ON "jobs" USING btree ("start_time" DESC NULLS LAST,"jid" DESC NULLS LAST);