/* Reads a JSON object of strings, prints each value's SHA-256 as JSON: two -dev libraries
 * (cJSON and OpenSSL's libcrypto) whose runtime packages the board must have. */
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>

int main(int argc, char **argv) {
    const char *text = argc > 1 ? argv[1] : "{\"hello\": \"board\"}";
    cJSON *in = cJSON_Parse(text), *out = cJSON_CreateObject(), *item;
    if (!in) {
        fprintf(stderr, "not JSON\n");
        return 2;
    }
    cJSON_ArrayForEach(item, in) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1];
        const char *s = cJSON_GetStringValue(item);
        EVP_Digest(s ? s : "", s ? strlen(s) : 0, md, &n, EVP_sha256(), NULL);
        for (unsigned int i = 0; i < n; i++)
            sprintf(hex + 2 * i, "%02x", md[i]);
        cJSON_AddStringToObject(out, item->string, hex);
    }
    char *printed = cJSON_PrintUnformatted(out);
    puts(printed);
    cJSON_free(printed);
    cJSON_Delete(in);
    cJSON_Delete(out);
    return 0;
}
