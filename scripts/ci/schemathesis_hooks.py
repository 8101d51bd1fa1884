"""schemathesis hooks for scripts/ci/schemathesis.sh.

OpenAPI 3.0 cannot say that query parameters exclude or require each other; openapi.yaml says it
in words and this filter says it to schemathesis: `preset` stands alone, `quality` (Orthanc's own
JPEG quality) does not go with the variant parameters w, h, fit, format, q, Orthanc's `/rendered`
`width` / `height` do not go with them or with `preset` either, and `window-center` /
`window-width` come together.
"""
import schemathesis

VARIANT = {"w", "h", "fit", "format", "q"}


@schemathesis.hook
def filter_query(context, query):
    if not query:
        return True
    keys = set(query)
    if "preset" in keys and keys & VARIANT:
        return False
    if "quality" in keys and keys & (VARIANT | {"preset"}):
        return False
    if keys & {"width", "height"} and keys & (VARIANT | {"preset"}):
        return False
    if ("window-center" in keys) != ("window-width" in keys):
        return False
    return True
