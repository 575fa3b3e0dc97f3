"""Every behaviour of the sandbox that Microsoft does not document (UNCONFIRMED), in one place.

Each constant says what we chose and why. Change them here only; tests import them rather than
repeating the text. Documented facts (cloud-facts.md) live next to the code that applies them.
"""

from __future__ import annotations

# ------------------------------------------------------------------------------------- Graph: users

#: Properties Graph v1.0 returns for a user when no $select is given (documented default set).
USER_DEFAULT_PROPERTIES: tuple[str, ...] = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)

#: UNCONFIRMED: the user object returned by a successful assignLicense. The docs show a user object;
#: we return the default set plus assignedLicenses so a client can confirm the effect.
ASSIGN_LICENSE_RESPONSE_PROPERTIES: tuple[str, ...] = (*USER_DEFAULT_PROPERTIES, "assignedLicenses")

#: Facts: message when one of the two arrays is missing.
MSG_MISSING_PARAMETERS = (
    "One or more parameters of the operation 'assignLicense' are missing from the request payload. "
    "The missing parameters are: {names}."
)
MSG_INVALID_USAGE_LOCATION = "License assignment cannot be done for user with invalid usage location."
MSG_NO_AVAILABLE_LICENSES = "Subscription with SKU {sku_id} does not have any available licenses."
MSG_SKU_NOT_IN_TENANT = "License {sku_id} does not correspond to a valid company License."
#: UNCONFIRMED (facts give only "contains 'User does not have a corresponding license'").
MSG_REMOVE_NOT_HELD = "User does not have a corresponding license {sku_id}."
#: UNCONFIRMED: removing a group-inherited license directly.
MSG_REMOVE_INHERITED = (
    "License {sku_id} is assigned to the user by group {group_id} and cannot be removed directly. "
    "Remove the user from the group instead."
)
#: Facts give these as audit texts; UNCONFIRMED that a direct call answers them, and with which status and code:
#: we answer 400 Request_BadRequest (the code Graph gives every other refused assignLicense).
PLAN_RULE_STATUS = 400
PLAN_RULE_CODE = "Request_BadRequest"
MSG_MUTUALLY_EXCLUSIVE = "License assignment failed because service plans {a}, {b} are mutually exclusive."
MSG_DEPENDENCY = "License assignment failed because service plan {a} depends on the service plan(s) {b}."
#: UNCONFIRMED: a disabled plan that is not part of the SKU.
MSG_PLAN_NOT_IN_SKU = "Service plan {plan_id} is not part of the license {sku_id}."
#: UNCONFIRMED: a Company-only SKU (appliesTo == "Company") sent to a user.
MSG_COMPANY_SKU = "License {sku_id} applies to the company and cannot be assigned to a user."
#: UNCONFIRMED: the same SKU in addLicenses and removeLicenses.
MSG_ADD_AND_REMOVE = "License {sku_id} cannot be both added and removed in the same request."
#: UNCONFIRMED: malformed assignLicense payload (not a GUID, wrong type).
MSG_BAD_PAYLOAD = "Invalid value specified for property '{name}' of resource 'assignedLicense'."
MSG_RESOURCE_NOT_FOUND = (
    "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
)
MSG_FORBIDDEN = "Insufficient privileges to complete the operation."
MSG_TOKEN_EMPTY = "Access token is empty."
MSG_TOKEN_INVALID = "CompactToken parsing failed with error code: 80049217"
#: Graph's message for a bad usageLocation on PATCH (seen in practice).
MSG_BAD_USAGE_LOCATION_VALUE = "Invalid value specified for property 'usageLocation' of resource 'User'."
MSG_UNKNOWN_PROPERTY = "Could not find a property named '{name}' on type 'Microsoft.DirectoryServices.{type}'."
MSG_UNSUPPORTED_QUERY = "Unsupported Query."
#: OData's message for a literal of the wrong type (``accountEnabled eq 'true'``: a quoted boolean), a 400.
MSG_INCOMPATIBLE_OPERANDS = (
    "A binary operator with incompatible types was detected. Found operand types '{left}' and '{right}' for "
    "operator kind 'Equal'."
)
MSG_TOO_MANY_IN = (
    "Too many child clauses specified in search filter expression containing 'OR' operators: {n}. Max allowed: {max}."
)
MSG_MEMBER_EXISTS = (
    "One or more added object references already exist for the following modified properties: 'members'."
)
#: UNCONFIRMED wording (and status): adding a group as a member of itself. Longer cycles (A in B, B in A) are
#: accepted, as Entra does not forbid circular nesting (tools exist to report it); transitive listings walk each
#: group once.
MSG_GROUP_MEMBER_OF_ITSELF = "A group cannot be a member of itself."
#: group-post-members.md: "you can add up to only 20 members" in one PATCH. UNCONFIRMED: the exact refusal text.
MAX_MEMBERS_PER_PATCH = 20
MSG_TOO_MANY_MEMBERS = (
    "The request contains {n} member references; at most {max} can be added in one request."
)
#: UNCONFIRMED wording: adding or removing members of a rule-based (dynamic) group.
MSG_DYNAMIC_MEMBERS = (
    "Insufficient privileges to complete the operation: the members of a group with dynamic membership are "
    "managed by its rule and cannot be changed directly."
)
MSG_NOT_ALLOWED = "Request not applicable to target tenant or the method is not allowed."
MSG_THROTTLED = "Please retry again later."
MSG_SERVICE_UNAVAILABLE = "The service is temporarily unavailable. Please retry later."
MSG_GATEWAY_TIMEOUT = "The gateway did not receive a response in time."

#: Graph documents `in` as limited to 15 values by default.
MAX_IN_VALUES = 15

# ------------------------------------------------------------------------------------- Graph: $batch

MAX_BATCH_ITEMS = 20
#: UNCONFIRMED wording; the rule (at most 20, relative URLs, Content-Type with a body) is documented.
MSG_BATCH_TOO_MANY = "The number of requests in the batch exceeds the limit of {max}."
MSG_BATCH_ABSOLUTE_URL = "Invalid request URL for batch request id : {id}. The url must be relative."
MSG_BATCH_NO_CONTENT_TYPE = "Write request id : {id} does not contain Content-Type header or body."
MSG_BATCH_DUPLICATE_ID = "Batch request contains duplicate request id : {id}."
MSG_BATCH_BAD_DEPENDS = "Request id {id} depends on an unknown request id {dep}."
MSG_BATCH_INVALID = "Invalid batch payload format."
MSG_DEPENDENCY_FAILED = "The dependent request failed."
#: Facts: a raw '#' inside an item's url ends the path there and the request 404s. UNCONFIRMED: what answers
#: when the cut path is a valid route for another method (POST /users/{cut}): we answer the 404 the user look-up
#: would give (Request_ResourceNotFound naming the cut id) rather than a 405.
BATCH_CUT_URL_IS_NOT_FOUND = True

# ----------------------------------------------------------------------------------- throttling

#: UNCONFIRMED: how far a quota's counter may grow past the quota when a client keeps sending while
#: throttled (requests sent while throttled count). 2.0 = a hammering client waits at most one extra window.
THROTTLE_OVERDRAW_FACTOR = 2.0
#: Resource-unit costs. cloud-facts prices "GET users" at 2 (before $select -1); a single user's GET is taken to
#: cost the same (the client's read budget assumes it too: batch/tenant/reads.py). UNCONFIRMED: groups and members.
COST_GET_USER = 2
COST_GET_GROUPS = 2
COST_GET_MEMBERS = 2
COST_WRITE = 1
#: A Retry-After below this many seconds is always sent fractional (integer form would round it to 0 or 1
#: and defeat time_scale); at or above, the form is drawn by the configured rates.
MIN_INTEGER_RETRY_AFTER = 1.0
#: An HTTP-date Retry-After has one-second resolution: only used when the wait is at least this long.
MIN_HTTP_DATE_RETRY_AFTER = 2.0
#: UNCONFIRMED: the fault 503 with Retry-After advertises this many seconds (scaled by time_scale).
FAULT_503_RETRY_AFTER_SECONDS = 3.0
#: UNCONFIRMED: share of dropped connections that happen AFTER the request took effect (write outcome unknown).
DROP_AFTER_EFFECT_SHARE = 0.5

# ------------------------------------------------------------------------------ group-based licensing

#: UNCONFIRMED: a group without a usage location on the member uses the tenant's country (Microsoft
#: documents that group licensing falls back to the directory's location).
GROUP_LICENSING_FALLBACK_LOCATION = True

# ---------------------------------------------------------------------------------- Power Platform

#: Facts: the per-environment GET|PATCH lists 2022-03-01-preview and, now, 2024-10-01.
PP_API_VERSION_ALLOCATIONS = frozenset({"2022-03-01-preview", "2024-10-01"})
PP_API_VERSION_V2 = frozenset({"2024-10-01"})
#: The per-environment endpoint answers the 2024-10-01 entry shape (autoAllocated, enforcementRules inside each
#: entry) when asked with 2024-10-01, and the bare {currencyType, allocated} entries with 2022-03-01-preview.
PP_RULE_TYPES = ("Alert", "PayGo", "TenantPool", "Deny")
#: UNCONFIRMED: environments accept the new version and the preview one.
PP_API_VERSION_ENVIRONMENTS = frozenset({"2024-10-01", "2022-03-01-preview"})
#: UNCONFIRMED: 404 for an unknown environment (403 with an empty body has also been seen).
PP_UNKNOWN_ENVIRONMENT_STATUS = 404
PP_UNKNOWN_ENVIRONMENT_CODE = "EnvironmentNotFound"
PP_UNKNOWN_ENVIRONMENT_MSG = "The environment '{id}' could not be found in the tenant '{tenant}'."
#: UNCONFIRMED: over-allocation is a 400 with an {"error": {...}} body.
PP_OVER_ALLOCATION_CODE = "InsufficientCapacity"
PP_OVER_ALLOCATION_MSG = (
    "Insufficient capacity for currency type '{currency}': {requested} requested, {available} available "
    "({purchased} purchased, {others} allocated to other environments)."
)
PP_UNKNOWN_CURRENCY_CODE = "InvalidCurrencyType"
PP_UNKNOWN_CURRENCY_MSG = "The currency type '{currency}' is not valid."
PP_BAD_REQUEST_CODE = "InvalidRequestBody"
#: Facts: gateway errors are a bare {"code","message"} object.
PP_API_VERSION_CODE = "ApiVersionInvalid"
PP_API_VERSION_MSG = "The specified api version '{version}' is invalid. Supported versions: {supported}."
PP_UNAUTHORIZED_CODE = "Unauthorized"
PP_FORBIDDEN_CODE = "Forbidden"
PP_THROTTLED_CODE = "TooManyRequests"
#: UNCONFIRMED: currencyReports without includeAllocations=true omit the allocated field.
PP_REPORT_ALLOCATED_ONLY_WHEN_ASKED = True
#: UNCONFIRMED: PATCH allocations answers every allocation of the environment, not only the patched ones.
PP_PATCH_RETURNS_ALL = True
#: UNCONFIRMED: a currency entry sent without "enforcementRules" keeps the rules it has (PATCH semantics: the
#: 2022 body and Microsoft's seed sample send only currencyType/allocated). An entry that carries the list replaces
#: that entry's rules. "autoAllocated" in a request is ignored: the service sets it.
PP_PATCH_KEEPS_OMITTED_RULES = True
#: UNCONFIRMED: "enforcementRules" beside "currencyAllocations" (the old sandbox's mistaken shape) is refused
#: (400 InvalidRequestBody) rather than silently ignored, so a client that sends it finds out.
PP_REJECT_TOP_LEVEL_RULES = True
#: UNCONFIRMED (facts give only the code): a write to an environment whose environment-group policy locks the
#: tenant pool answers 409 with {"error": {"code": "TenantPoolLockedByPolicy", "message"}}. Reads still work.
#: 409 rather than 403 so that it is not mistaken for a missing permission (the whole run would stop).
PP_TENANT_POOL_LOCKED_STATUS = 409
PP_TENANT_POOL_LOCKED_CODE = "TenantPoolLockedByPolicy"
PP_TENANT_POOL_LOCKED_MSG = (
    "The allocation of environment '{id}' cannot be changed: the policy of its environment group "
    "'{group}' locks the tenant pool."
)
#: UNCONFIRMED: allocationsV2/availability reports the unallocated tenant pool (purchased - allocated to every
#: environment), not counting what the filtered environment already holds. True: purchased - allocated to the
#: OTHER environments (the most this environment could be set to).
PP_AVAILABILITY_INCLUDES_OWN = False
#: UNCONFIRMED: PUT allocationsV2 answers 200 with the environment's allocated entitlements in the request shape.
PP_FILTER_INVALID_CODE = "InvalidFilter"

# ------------------------------------------------------------------------------------------ tokens

#: A second development token without any write permission (for 403 tests). Not a secret.
READ_ONLY_TOKEN = "sandbox-readonly-token"

#: ``GET /users/$count`` without ``ConsistencyLevel: eventual`` (advanced queries need it). UNCONFIRMED text.
MSG_COUNT_NEEDS_EVENTUAL = "Count is not currently supported."

# ------------------------------------------------------------------------- advanced queries (directory objects)
#: aad-advanced-queries.md (filter-directory-objects table): these user properties take ``eq`` (and every other
#: $filter operator) only in an advanced query: ``ConsistencyLevel: eventual`` AND ``$count=true``. department,
#: jobTitle, country, city, state, usageLocation, userType, accountEnabled take ``eq`` by default.
ADVANCED_ONLY_USER_FILTERS = frozenset({"companyname", "officelocation", "employeetype", "mobilephone",
                                        "preferredlanguage"})
#: group-list-transitivemembers.md: filtering on the OData type (``/transitiveMembers/microsoft.graph.user``) needs
#: the advanced query parameters. (The page's newer wording only says the cast is possible; its request-header
#: table still lists the cast among what needs ConsistencyLevel and $count: we keep the stricter reading.)
CAST_NEEDS_ADVANCED_QUERY = True
#: The documented refusal is for ``endsWith`` ("Operator 'endsWith' is not supported because the required
#: parameters might be missing. ..."); UNCONFIRMED that ``eq`` on such a property and a cast say the same.
MSG_NEEDS_ADVANCED_QUERY = (
    "{what} is not supported because the required parameters might be missing. Try adding $count=true query "
    "parameter and ConsistencyLevel:eventual header. Refer to https://aka.ms/graph-docs/advanced-queries for more "
    "information"
)
#: group-list-transitivemembers.md: a cast to a type a group cannot have as a member: 400 Request_UnsupportedQuery.
#: UNCONFIRMED wording.
MSG_UNSUPPORTED_CAST = "The type cast '{cast}' is not supported for this navigation property."
