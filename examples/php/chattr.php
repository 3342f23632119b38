<?php
// The few calls an app makes to Chattr, with PHP's standard library only (no curl needed).

declare(strict_types=1);

/** The chat as browsers reach it (embed.js, the widget). */
function chattr_url(): string
{
    return rtrim(getenv('CHATTR_URL') ?: 'http://127.0.0.1:3000', '/');
}

/** The shared secret: it stays on this server, never in a page. */
function chattr_secret(): string
{
    $secret = getenv('CHATTR_SHARED_SECRET');
    if ($secret === false || $secret === '') {
        throw new RuntimeException('set CHATTR_SHARED_SECRET to the secret chattrd was started with');
    }
    return $secret;
}

/** A JSON call to the server API; returns the decoded answer, or throws with Chattr's error. */
function chattr_api(string $method, string $path, ?array $body = null): array
{
    $context = stream_context_create(['http' => [
        'method' => $method,
        'header' => "Authorization: Bearer " . chattr_secret() . "\r\nContent-Type: application/json\r\n",
        'content' => $body === null ? '' : json_encode($body),
        'ignore_errors' => true, // read Chattr's error body instead of a bare warning
        'timeout' => 5,
    ]]);
    $answer = file_get_contents(chattr_url() . $path, false, $context);
    $status = (int) explode(' ', $http_response_header[0] ?? 'HTTP/1.1 0')[1];
    $json = $answer === false || $answer === '' ? [] : json_decode($answer, true);
    if ($status >= 300) {
        throw new RuntimeException("Chattr answered $status: " . ($json['code'] ?? '') . ' ' . ($json['message'] ?? ''));
    }
    return is_array($json) ? $json : [];
}

/** A login token for one of this app's users, to hand to the browser: ['token', 'expires_at']. */
function chattr_token(string $user): array
{
    return chattr_api('POST', '/api/token', ['user' => $user]);
}

/** Posts a message to a channel or a user as a named bot. */
function chattr_post_message(string $target, string $text, string $from): array
{
    return chattr_api('POST', '/api/messages', ['target' => $target, 'text' => $text, 'from' => $from]);
}

/**
 * Checks a webhook's Chattr-Signature header ("t=<unix>,v1=<hex HMAC-SHA256(secret, t.body)>")
 * against the raw body, refusing one older than $tolerance seconds (a replay).
 */
function chattr_verify_webhook(string $body, string $header, int $tolerance = 300): bool
{
    $parts = [];
    foreach (explode(',', $header) as $item) {
        [$key, $value] = array_pad(explode('=', trim($item), 2), 2, '');
        $parts[$key] = $value;
    }
    if (!isset($parts['t'], $parts['v1']) || !ctype_digit($parts['t'])) {
        return false;
    }
    if (abs(time() - (int) $parts['t']) > $tolerance) {
        return false;
    }
    $expected = hash_hmac('sha256', $parts['t'] . '.' . $body, chattr_secret());
    return hash_equals($expected, $parts['v1']);
}

/** Where this example keeps the webhook events it received (one JSON object per line). */
function webhook_log(): string
{
    return getenv('WEBHOOK_LOG') ?: sys_get_temp_dir() . '/chattr-php-example-webhooks.jsonl';
}

/** The app's session: its cookie out of reach of scripts and of other sites' form posts. */
function app_session(): void
{
    session_start(['cookie_httponly' => true, 'cookie_samesite' => 'Lax', 'use_strict_mode' => true]);
    $_SESSION['csrf'] ??= bin2hex(random_bytes(16));
}

/** A form's hidden token, and the check of it: a POST from another site's page has none. */
function csrf_field(): string
{
    return '<input type="hidden" name="csrf" value="' . $_SESSION['csrf'] . '">';
}

function csrf_ok(): bool
{
    return hash_equals($_SESSION['csrf'] ?? '', (string) ($_POST['csrf'] ?? ''));
}
