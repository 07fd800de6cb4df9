/*
 * schema.c — model definitions: dtypes, validation, small lookups.
 *
 * A model definition arrives from ZooKeeper, a config file, the command
 * line or a snapshot, so every field is checked here before a store is
 * built from it, and each failure names the model, the table and the field.
 * This file allocates nothing and knows nothing about rows or versions.
 */
#include <stdio.h>
#include <string.h>

#include "shard/shard.h"

/* Byte counts are checked in 64 bits and then used as size_t. */
_Static_assert(SIZE_MAX >= UINT64_MAX, "freshet needs a 64-bit size_t");

size_t shard_dtype_size(enum shard_dtype dt)
{
	switch (dt) {
	case SHARD_F32:
		return 4;
	case SHARD_F16:
		return 2;
	}
	return 0;
}

const char *shard_dtype_name(enum shard_dtype dt)
{
	switch (dt) {
	case SHARD_F32:
		return "f32";
	case SHARD_F16:
		return "f16";
	}
	return "unknown";
}

enum fr_err shard_dtype_parse(const char *s, enum shard_dtype *out)
{
	if (s && strcmp(s, "f32") == 0) {
		*out = SHARD_F32;
		return FR_OK;
	}
	if (s && strcmp(s, "f16") == 0) {
		*out = SHARD_F16;
		return FR_OK;
	}
	return fr_fail(FR_ERR_INVAL, "dtype '%s': expected 'f32' or 'f16'",
		       s ? s : "(null)");
}

/* Names follow common.h's rule: they end up in ZooKeeper paths, file
 * names and log lines.  `what` says whose name it is for the message. */
static enum fr_err check_name(const char *name, const char *what)
{
	return fr_name_check(what, name, SHARD_NAME_MAX);
}

enum fr_err shard_model_validate(const struct shard_model_def *def)
{
	char what[2 * SHARD_NAME_MAX + 32];
	enum fr_err err;

	if (!def)
		return fr_fail(FR_ERR_INVAL, "model definition is NULL");
	err = check_name(def->name, "model");
	if (err)
		return err;
	if (def->ntables < 1 || def->ntables > SHARD_TABLES_MAX)
		return fr_fail(FR_ERR_RANGE,
			       "model '%s': ntables %u out of range [1, %d]",
			       def->name, def->ntables, SHARD_TABLES_MAX);
	if (def->shards < 1 || def->shards > SHARD_SHARDS_MAX)
		return fr_fail(FR_ERR_RANGE,
			       "model '%s': shards %u out of range [1, %d]",
			       def->name, def->shards, SHARD_SHARDS_MAX);
	for (uint32_t i = 0; i < def->ntables; i++) {
		const struct shard_table_def *t = &def->tables[i];
		uint64_t bytes;

		snprintf(what, sizeof(what), "model '%s' table %u", def->name,
			 i);
		err = check_name(t->name, what);
		if (err)
			return err;
		snprintf(what, sizeof(what), "model '%s' table '%s'",
			 def->name, t->name);
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(def->tables[j].name, t->name) == 0)
				return fr_fail(FR_ERR_EXISTS,
					       "model '%s': duplicate table name '%s' (tables %u and %u)",
					       def->name, t->name, j, i);
		if (t->rows < 1)
			return fr_fail(FR_ERR_RANGE,
				       "%s: rows 0 out of range [1, 2^64)",
				       what);
		if (t->dim < 1 || t->dim > SHARD_DIM_MAX)
			return fr_fail(FR_ERR_RANGE,
				       "%s: dim %u out of range [1, %d]", what,
				       t->dim, SHARD_DIM_MAX);
		if (shard_dtype_size(t->dtype) == 0)
			return fr_fail(FR_ERR_INVAL,
				       "%s: dtype %d unknown; expected f32 (%d) or f16 (%d)",
				       what, (int)t->dtype, SHARD_F32,
				       SHARD_F16);
		/* The row data, and the 12 bytes of version and origin kept
		 * per row, must be addressable without overflow. */
		if (!fr_mul_size(t->rows,
				 (uint64_t)t->dim * shard_dtype_size(t->dtype),
				 &bytes) ||
		    !fr_mul_size(t->rows, 12, &bytes))
			return fr_fail(FR_ERR_TOOBIG,
				       "%s: rows*dim*%zu overflows (rows %llu, dim %u)",
				       what, shard_dtype_size(t->dtype),
				       (unsigned long long)t->rows, t->dim);
	}
	return FR_OK;
}

size_t shard_row_bytes(const struct shard_table_def *t)
{
	return (size_t)t->dim * shard_dtype_size(t->dtype);
}

int shard_model_table_index(const struct shard_model_def *def,
			    const char *name)
{
	if (!def || !name)
		return -1;
	for (uint32_t i = 0; i < def->ntables && i < SHARD_TABLES_MAX; i++)
		if (strncmp(def->tables[i].name, name, SHARD_NAME_MAX + 1) == 0)
			return (int)i;
	return -1;
}
