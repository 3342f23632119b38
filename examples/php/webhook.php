<?php
// Chattr's webhooks (CHATTR_WEBHOOK_URLS=http://this-app/webhook.php): each event, verified,
// is written to a log the app can act on. A forged or replayed one is refused.

declare(strict_types=1);
require __DIR__ . '/chattr.php';

$body = file_get_contents('php://input');
if (!chattr_verify_webhook($body, $_SERVER['HTTP_CHATTR_SIGNATURE'] ?? '')) {
    http_response_code(401);
    exit('bad signature');
}
$event = json_decode($body, true);
file_put_contents(webhook_log(), json_encode($event) . "\n", FILE_APPEND | LOCK_EX);
http_response_code(204); // any 2xx: delivered; anything else is retried with backoff
