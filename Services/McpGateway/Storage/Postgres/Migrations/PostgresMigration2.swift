extension PostgresSchema {
    /// Refresh token rotation in one round trip; revoked grants indexed for the sweep.
    static let migration2 = Migration(
        version: 2, name: "refresh token rotation in one round trip; revoked grants indexed for the sweep",
        statements: [
            "CREATE INDEX oauth_grant_revoked_at ON oauth_grant (revoked_at) WHERE revoked_at IS NOT NULL",
            // The rule of RefreshRotation (RefreshRotationRule in Swift), applied where the row is: one call is
            // one transaction that holds the grant's row (FOR UPDATE) from the decision to the new tokens. A
            // refresh grant then costs one round trip to the database instead of six.
            """
            CREATE FUNCTION gateway_rotate_refresh_token(
              p_presented text, p_grant text, p_new_refresh text, p_access_digest text, p_client text,
              p_scope text, p_resource text, p_access_expires timestamptz, p_now timestamptz,
              p_grace_until timestamptz)
            RETURNS text LANGUAGE plpgsql AS $$
            DECLARE
              g oauth_grant%ROWTYPE;
            BEGIN
              SELECT * INTO g FROM oauth_grant WHERE id = p_grant FOR UPDATE;
              IF NOT FOUND OR g.revoked_at IS NOT NULL OR g.expires_at <= p_now THEN
                RETURN 'inactive';
              END IF;
              IF g.current_refresh_digest = p_presented THEN
                -- The newest token: it becomes the previous one, a grace token until p_grace_until.
                UPDATE oauth_grant SET previous_refresh_digest = current_refresh_digest,
                  current_refresh_digest = p_new_refresh, previous_refresh_valid_until = p_grace_until
                WHERE id = p_grant;
              ELSIF g.previous_refresh_digest = p_presented AND g.previous_refresh_valid_until >= p_now THEN
                -- A retry within the grace, the newest still unused: it is replaced; the grace keeps its end.
                UPDATE oauth_grant SET current_refresh_digest = p_new_refresh WHERE id = p_grant;
              ELSE
                -- Anything else is a replay: the grant is revoked with its access tokens.
                UPDATE oauth_grant SET revoked_at = p_now WHERE id = p_grant;
                DELETE FROM access_token WHERE grant_id = p_grant;
                PERFORM pg_notify('mcp_gateway_changes', 'g:' || p_grant);
                RETURN 'reused';
              END IF;
              INSERT INTO access_token (digest, grant_id, client_id, scope, resource, expires_at)
              VALUES (p_access_digest, p_grant, p_client, p_scope, p_resource, p_access_expires);
              INSERT INTO refresh_token (digest, grant_id, issued_at) VALUES (p_new_refresh, p_grant, p_now);
              RETURN 'rotated';
            END
            $$
            """,
        ])
}
