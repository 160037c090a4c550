CREATE SEQUENCE "public"."seq_salt_events_id" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1;--> statement-breakpoint
CREATE TABLE "agents" (
	"id" varchar(255) PRIMARY KEY NOT NULL,
	"first_seen" timestamp with time zone NOT NULL,
	"last_seen" timestamp with time zone NOT NULL,
	"version" text,
	"grains" jsonb,
	"starts" integer DEFAULT 1 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "dead_letters" (
	"seq" bigint PRIMARY KEY NOT NULL,
	"subject" text NOT NULL,
	"raw" "bytea" NOT NULL,
	"error" text NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "jids" (
	"jid" varchar(255) PRIMARY KEY NOT NULL,
	"load" jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "jobs" (
	"jid" varchar(255) PRIMARY KEY NOT NULL,
	"fun" text NOT NULL,
	"arg" jsonb NOT NULL,
	"tgt" jsonb NOT NULL,
	"tgt_type" text NOT NULL,
	"user" text NOT NULL,
	"metadata" jsonb,
	"minions" jsonb NOT NULL,
	"missing" jsonb NOT NULL,
	"expected" integer NOT NULL,
	"returned" integer DEFAULT 0 NOT NULL,
	"failed" integer DEFAULT 0 NOT NULL,
	"start_time" timestamp with time zone NOT NULL,
	"end_time" timestamp with time zone,
	"published_seq" bigint
);
--> statement-breakpoint
CREATE TABLE "procs" (
	"jid" varchar(255) NOT NULL,
	"id" varchar(255) NOT NULL,
	"fun" text NOT NULL,
	"pid" integer NOT NULL,
	"state" text NOT NULL,
	"outcome" text,
	"signal" integer,
	"retcode" integer,
	"started_at" timestamp with time zone,
	"ended_at" timestamp with time zone,
	CONSTRAINT "procs_jid_id_pk" PRIMARY KEY("jid","id")
);
--> statement-breakpoint
CREATE TABLE "projector_checkpoint" (
	"name" text PRIMARY KEY NOT NULL,
	"last_seq" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "salt_events" (
	"id" bigint DEFAULT nextval('seq_salt_events_id') NOT NULL,
	"tag" varchar(255) NOT NULL,
	"data" jsonb NOT NULL,
	"alter_time" timestamp with time zone DEFAULT now(),
	"master_id" varchar(255) NOT NULL,
	CONSTRAINT "salt_events_id_unique" UNIQUE("id")
);
--> statement-breakpoint
CREATE TABLE "salt_returns" (
	"fun" varchar(50) NOT NULL,
	"jid" varchar(255) NOT NULL,
	"return" jsonb NOT NULL,
	"id" varchar(255) NOT NULL,
	"success" varchar(10) NOT NULL,
	"full_ret" jsonb NOT NULL,
	"alter_time" timestamp with time zone DEFAULT now()
);
--> statement-breakpoint
CREATE INDEX "idx_jids_jsonb" ON "jids" USING gin ("load") WITH (fastupdate=on);--> statement-breakpoint
CREATE INDEX "idx_jobs_start_time" ON "jobs" USING btree ("start_time");--> statement-breakpoint
CREATE INDEX "idx_jobs_fun" ON "jobs" USING btree ("fun");--> statement-breakpoint
CREATE INDEX "idx_jobs_user" ON "jobs" USING btree ("user");--> statement-breakpoint
CREATE INDEX "idx_procs_state" ON "procs" USING btree ("state");--> statement-breakpoint
CREATE INDEX "idx_salt_events_tag" ON "salt_events" USING btree ("tag");--> statement-breakpoint
CREATE INDEX "idx_salt_events_data" ON "salt_events" USING gin ("data") WITH (fastupdate=on);--> statement-breakpoint
CREATE INDEX "idx_salt_returns_id" ON "salt_returns" USING btree ("id");--> statement-breakpoint
CREATE INDEX "idx_salt_returns_jid" ON "salt_returns" USING btree ("jid");--> statement-breakpoint
CREATE INDEX "idx_salt_returns_fun" ON "salt_returns" USING btree ("fun");--> statement-breakpoint
CREATE INDEX "idx_salt_returns_return" ON "salt_returns" USING gin ("return") WITH (fastupdate=on);--> statement-breakpoint
CREATE INDEX "idx_salt_returns_full_ret" ON "salt_returns" USING gin ("full_ret") WITH (fastupdate=on);