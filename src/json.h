/* json.h - reading JSON files (config.json, tokenizer.json, ...) with cJSON. */
#ifndef SALIGN_JSON_H
#define SALIGN_JSON_H

#include <cjson/cJSON.h>

/* Parse a file that must hold one JSON object. NULL + sa_err("PATH: ...") otherwise. */
cJSON *sa_json_read_object(const char *path);

#endif
