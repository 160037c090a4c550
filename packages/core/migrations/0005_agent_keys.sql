CREATE TABLE "agent_keys" (
	"id" varchar(255) PRIMARY KEY NOT NULL,
	"public_key" text NOT NULL,
	"state" text NOT NULL,
	"seq" bigint NOT NULL,
	"changed_at" timestamp with time zone NOT NULL
);
