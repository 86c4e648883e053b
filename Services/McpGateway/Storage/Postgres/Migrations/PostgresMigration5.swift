extension PostgresSchema {
    /// DPoP-bound tokens.
    static let migration5 = Migration(
        version: 5, name: "DPoP-bound tokens",
        statements: [
            "ALTER TABLE access_token ADD COLUMN dpop_jkt text",
            "ALTER TABLE oauth_grant ADD COLUMN dpop_jkt text",
            // The rotation of migration 2, with the access token's DPoP binding.
            """
            DROP FUNCTION gateway_rotate_refresh_token(text, text, text, text, text, text, text, timestamptz,
              timestamptz, timestamptz)
            """,
            """
            CREATE FUNCTION gateway_rotate_refresh_token(
              p_presented text, p_grant text, p_new_refresh text, p_access_digest text, p_client text,
              p_scope text, p_resource text, p_access_expires timestamptz, p_now timestamptz,
              p_grace_until timestamptz, p_dpop_jkt text)
            RETURNS text LANGUAGE plpgsql AS $$
            DECLARE
              g oauth_grant%ROWTYPE;
            BEGIN
              SELECT * INTO g FROM oauth_grant WHERE id = p_grant FOR UPDATE;
              IF NOT FOUND OR g.revoked_at IS NOT NULL OR g.expires_at <= p_now THEN
                RETURN 'inactive';
              END IF;
              IF g.current_refresh_digest = p_presented THEN
                UPDATE oauth_grant SET previous_refresh_digest = current_refresh_digest,
                  current_refresh_digest = p_new_refresh, previous_refresh_valid_until = p_grace_until
                WHERE id = p_grant;
              ELSIF g.previous_refresh_digest = p_presented AND g.previous_refresh_valid_until >= p_now THEN
                UPDATE oauth_grant SET current_refresh_digest = p_new_refresh WHERE id = p_grant;
              ELSE
                UPDATE oauth_grant SET revoked_at = p_now WHERE id = p_grant;
                DELETE FROM access_token WHERE grant_id = p_grant;
                PERFORM pg_notify('mcp_gateway_changes', 'g:' || p_grant);
                RETURN 'reused';
              END IF;
              INSERT INTO access_token (digest, grant_id, client_id, scope, resource, expires_at, dpop_jkt)
              VALUES (p_access_digest, p_grant, p_client, p_scope, p_resource, p_access_expires, p_dpop_jkt);
              INSERT INTO refresh_token (digest, grant_id, issued_at) VALUES (p_new_refresh, p_grant, p_now);
              RETURN 'rotated';
            END
            $$
            """,
        ])
}
