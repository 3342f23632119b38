<?php
// The app posts into the chat as a bot (stored and delivered like any message).

declare(strict_types=1);
require __DIR__ . '/chattr.php';
app_session();
if (!isset($_SESSION['user']) || $_SERVER['REQUEST_METHOD'] !== 'POST' || !csrf_ok()) {
    http_response_code(403);
    exit('Sign in first.');
}
chattr_post_message('#support', (string) ($_POST['text'] ?? ''), 'helpdesk');
header('Location: /');
