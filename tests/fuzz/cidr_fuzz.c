/*
 * libFuzzer target for the shared trusted-sources parser and matcher
 * (module/common/cidr.h), which parses a module parameter in the kernel.
 * Input: a NUL-terminated copy of the bytes is parsed; every parsed entry
 * must be well-formed and must match its own network address, except a
 * v4-mapped IPv6 one (::ffff:0:0/96), which matches nothing.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/cidr.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tb_cidr_list list;
	char *text = (char *)malloc(size + 1);
	int pos = -1, err, i;

	memcpy(text, data, size);
	text[size] = '\0';
	err = tb_cidr_list_parse(text, &list, &pos);
	check(err <= 0 && err >= TB_CIDR_EMPTY_ITEM);
	check(tb_cidr_strerror(err) != NULL);
	if (err) {
		check(pos >= 0 && (size_t)pos <= strlen(text));
	} else {
		check(list.count >= 0 && list.count <= TB_CIDR_MAX);
		for (i = 0; i < list.count; i++) {
			const struct tb_cidr *c = &list.entries[i];

			check(c->family == 4 || c->family == 6);
			check(c->prefix <= (c->family == 4 ? 32 : 128));
			if (c->family == 6 && tb_cidr_v4mapped(c->addr))
				check(!tb_cidr_list_match(&list, 6, c->addr));
			else
				check(tb_cidr_list_match(&list, c->family,
							 c->addr));
		}
	}
	free(text);
	return 0;
}
