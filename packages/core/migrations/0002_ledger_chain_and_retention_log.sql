CREATE TABLE "projector_chain" (
	"name" text NOT NULL,
	"seq" bigint NOT NULL,
	"hash" text NOT NULL,
	CONSTRAINT "projector_chain_name_seq_pk" PRIMARY KEY("name","seq")
);
--> statement-breakpoint
CREATE TABLE "retention_log" (
	"name" text NOT NULL,
	"seq" bigint NOT NULL,
	"part" integer NOT NULL,
	"archived" boolean NOT NULL,
	"jids" text[] NOT NULL,
	"event_ids" bigint[] NOT NULL,
	"removed_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "retention_log_name_seq_part_pk" PRIMARY KEY("name","seq","part")
);
--> statement-breakpoint
ALTER TABLE "projector_checkpoint" ADD COLUMN "chain" text;