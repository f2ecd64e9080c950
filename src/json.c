/* json.c - reading JSON files (see json.h). */
#include "json.h"

#include <stdlib.h>

#include "common.h"

cJSON *sa_json_read_object(const char *path) {
    size_t n;
    char *data = sa_read_file(path, &n);
    if (!data) return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(data, n, &end, 0);
    if (!j) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= data && at <= data + n ? (long)(at - data) : -1;
        sa_err("%s: not valid JSON (near byte %ld)", path, off);
    } else if (!cJSON_IsObject(j)) {
        sa_err("%s: expected a JSON object", path);
        cJSON_Delete(j);
        j = NULL;
    }
    free(data);
    return j;
}
