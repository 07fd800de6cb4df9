/*
 * test_shard_schema.c — CUnit suite for model definitions (shard/schema.c):
 * dtype names and sizes, every class of validation error with its code and
 * a detail naming the field, table lookup by name.  It does not build
 * stores (test_shard_store.c does).
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "shard/shard.h"
#include "testutil.h"
#include "unit_main.h"

static void good_def(struct shard_model_def *d)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->name, sizeof(d->name), "ranker.v2");
	d->priority = 3;
	d->shards = 8;
	d->ntables = 2;
	snprintf(d->tables[0].name, sizeof(d->tables[0].name), "users");
	d->tables[0].rows = 1000;
	d->tables[0].dim = 16;
	d->tables[0].dtype = SHARD_F32;
	snprintf(d->tables[1].name, sizeof(d->tables[1].name), "items-2_x");
	d->tables[1].rows = 1;
	d->tables[1].dim = SHARD_DIM_MAX;
	d->tables[1].dtype = SHARD_F16;
}

static void test_dtype(void)
{
	enum shard_dtype dt;

	CU_ASSERT_EQUAL(shard_dtype_size(SHARD_F32), 4);
	CU_ASSERT_EQUAL(shard_dtype_size(SHARD_F16), 2);
	CU_ASSERT_EQUAL(shard_dtype_size((enum shard_dtype)7), 0);
	CU_ASSERT_STRING_EQUAL(shard_dtype_name(SHARD_F32), "f32");
	CU_ASSERT_STRING_EQUAL(shard_dtype_name(SHARD_F16), "f16");
	CU_ASSERT_EQUAL(shard_dtype_parse("f32", &dt), FR_OK);
	CU_ASSERT_EQUAL(dt, SHARD_F32);
	CU_ASSERT_EQUAL(shard_dtype_parse("f16", &dt), FR_OK);
	CU_ASSERT_EQUAL(dt, SHARD_F16);
	dt = SHARD_F32;
	CU_ASSERT_EQUAL(shard_dtype_parse("F16", &dt), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("'F16'"));
	CU_ASSERT_EQUAL(dt, SHARD_F32);
	CU_ASSERT_EQUAL(shard_dtype_parse("", &dt), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(shard_dtype_parse("f32 ", &dt), FR_ERR_INVAL);
	CU_ASSERT_EQUAL(shard_dtype_parse(NULL, &dt), FR_ERR_INVAL);
}

static void test_good_defs(void)
{
	struct shard_model_def d;

	good_def(&d);
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_OK);
	CU_ASSERT_EQUAL(shard_row_bytes(&d.tables[0]), 64);
	CU_ASSERT_EQUAL(shard_row_bytes(&d.tables[1]), 2 * SHARD_DIM_MAX);
	/* Extremes that are allowed. */
	d.shards = SHARD_SHARDS_MAX;
	d.ntables = SHARD_TABLES_MAX;
	for (uint32_t i = 0; i < SHARD_TABLES_MAX; i++) {
		snprintf(d.tables[i].name, sizeof(d.tables[i].name), "t%u", i);
		d.tables[i].rows = 1;
		d.tables[i].dim = 1;
		d.tables[i].dtype = SHARD_F16;
	}
	memset(d.name, 'a', SHARD_NAME_MAX);
	d.name[SHARD_NAME_MAX] = '\0';
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_OK);
	CU_ASSERT_EQUAL(shard_of_row(17, 8), 1);
	CU_ASSERT_EQUAL(shard_of_row(16, 8), 0);
}

static void test_name_errors(void)
{
	struct shard_model_def d;

	good_def(&d);
	d.name[0] = '\0';
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("model is empty"));

	good_def(&d);
	memset(d.name, 'a', sizeof(d.name));    /* not terminated */
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("longer than 63"));

	good_def(&d);
	snprintf(d.name, sizeof(d.name), "bad/name");
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("0x2f"));

	good_def(&d);
	snprintf(d.tables[1].name, sizeof(d.tables[1].name), "sp ace");
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("model 'ranker.v2' table 1"));

	good_def(&d);
	d.tables[0].name[0] = '\0';
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("table 0 is empty"));

	good_def(&d);
	snprintf(d.tables[1].name, sizeof(d.tables[1].name), "users");
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_EXISTS);
	CU_ASSERT(errmsg_has("duplicate table name 'users'"));

	CU_ASSERT_EQUAL(shard_model_validate(NULL), FR_ERR_INVAL);
}

static void test_range_errors(void)
{
	struct shard_model_def d;

	good_def(&d);
	d.ntables = 0;
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("ntables 0 out of range [1, 64]"));
	d.ntables = SHARD_TABLES_MAX + 1;
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("ntables 65"));

	good_def(&d);
	d.shards = 0;
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("shards 0 out of range [1, 1048576]"));
	d.shards = SHARD_SHARDS_MAX + 1;
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_RANGE);

	good_def(&d);
	d.tables[0].rows = 0;
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("table 'users': rows 0"));

	good_def(&d);
	d.tables[0].dim = 0;
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("model 'ranker.v2' table 'users': dim 0 out of range [1, 65536]"));
	d.tables[0].dim = SHARD_DIM_MAX + 1;
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_RANGE);
	CU_ASSERT(errmsg_has("dim 65537"));

	good_def(&d);
	d.tables[1].dtype = (enum shard_dtype)0;
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_INVAL);
	CU_ASSERT(errmsg_has("table 'items-2_x': dtype 0 unknown"));

	good_def(&d);
	d.tables[0].rows = UINT64_MAX / 4;      /* * 16 * 4 overflows */
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_TOOBIG);
	CU_ASSERT(errmsg_has("table 'users': rows*dim*4 overflows"));
	d.tables[0].dim = 1;
	d.tables[0].dtype = SHARD_F16;
	/* rows*2 fits but the 12 bytes of version+origin per row do not. */
	d.tables[0].rows = UINT64_MAX / 8;
	CU_ASSERT_EQUAL(shard_model_validate(&d), FR_ERR_TOOBIG);
	CU_ASSERT(errmsg_has("rows*dim*2 overflows"));
}

static void test_table_index(void)
{
	struct shard_model_def d;

	good_def(&d);
	CU_ASSERT_EQUAL(shard_model_table_index(&d, "users"), 0);
	CU_ASSERT_EQUAL(shard_model_table_index(&d, "items-2_x"), 1);
	CU_ASSERT_EQUAL(shard_model_table_index(&d, "item"), -1);
	CU_ASSERT_EQUAL(shard_model_table_index(&d, ""), -1);
	CU_ASSERT_EQUAL(shard_model_table_index(&d, NULL), -1);
}

static const struct fr_unit_test tests[] = {
	{ "dtype", test_dtype },
	{ "good definitions", test_good_defs },
	{ "name errors", test_name_errors },
	{ "range errors", test_range_errors },
	{ "table index", test_table_index },
};

int main(void)
{
	return fr_unit_main("shard_schema", NULL, NULL, tests,
			    FR_UNIT_COUNT(tests));
}
