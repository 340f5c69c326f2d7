/** Same alphabet as stream entity ids (`{category}-{tenant}.{entityId}`), so ids can name streams and accounts. */
export const ENTITY_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const TENANT_ID_PATTERN = /^[a-z0-9_]{1,40}$/;
export const CATEGORY_PATTERN = /^[a-z]+$/;
